"""Maintenance windows: is_open / next_open / closes_at across time zones and DST changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from appliance.windows import MaintenanceWindow
from tests.conftest import bearer


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _window(cron: str, duration: timedelta, zone: str) -> MaintenanceWindow:
    return MaintenanceWindow("w", cron, duration, zone)


NIGHTLY_BERLIN = ("0 2 * * *", timedelta(hours=3), "Europe/Berlin")


@pytest.mark.parametrize(
    ("spec", "now", "is_open", "next_open", "closes_at"),
    [
        # Winter in Berlin (UTC+1): 02:00-05:00 local is 01:00-04:00 UTC.
        (NIGHTLY_BERLIN, "2024-01-15T00:59:59+00:00", False, "2024-01-15T02:00:00+01:00", None),
        (NIGHTLY_BERLIN, "2024-01-15T01:00:00+00:00", True, "2024-01-15T02:00:00+01:00", "2024-01-15T05:00:00+01:00"),
        (NIGHTLY_BERLIN, "2024-01-15T03:59:59+00:00", True, "2024-01-15T04:59:59+01:00", "2024-01-15T05:00:00+01:00"),
        (NIGHTLY_BERLIN, "2024-01-15T04:00:00+00:00", False, "2024-01-16T02:00:00+01:00", None),
        # Summer (UTC+2): the same local window is 00:00-03:00 UTC.
        (NIGHTLY_BERLIN, "2024-07-15T00:30:00+00:00", True, "2024-07-15T02:30:00+02:00", "2024-07-15T05:00:00+02:00"),
        (NIGHTLY_BERLIN, "2024-07-15T03:00:00+00:00", False, "2024-07-16T02:00:00+02:00", None),
        # A `now` given in another zone is read in the window's zone.
        (NIGHTLY_BERLIN, "2024-01-14T20:30:00-05:00", True, "2024-01-15T02:30:00+01:00", "2024-01-15T05:00:00+01:00"),
        # Weekend window in New York: Saturdays and Sundays 02:00 for 4h.
        (("0 2 * * 6,0", timedelta(hours=4), "America/New_York"), "2024-01-17T12:00:00+00:00", False,
         "2024-01-20T02:00:00-05:00", None),
        (("0 2 * * 6,0", timedelta(hours=4), "America/New_York"), "2024-01-21T08:00:00+00:00", True,
         "2024-01-21T03:00:00-05:00", "2024-01-21T06:00:00-05:00"),
        # A window that spans midnight.
        (("0 23 * * *", timedelta(hours=2), "UTC"), "2024-01-16T00:30:00+00:00", True,
         "2024-01-16T00:30:00+00:00", "2024-01-16T01:00:00+00:00"),
    ],
)
def test_is_open_next_open_closes_at(spec: tuple, now: str, is_open: bool, next_open: str,
                                     closes_at: str | None) -> None:
    window = _window(*spec)
    moment = _at(now)
    assert window.is_open(moment) is is_open
    assert window.next_open(moment) == _at(next_open)
    assert window.next_open(moment).isoformat() == next_open
    closes = window.closes_at(moment)
    assert (closes.isoformat() if closes else None) == closes_at


def test_spring_forward_window_in_the_missing_hour_opens_when_clocks_resume() -> None:
    # 2024-03-31 in Berlin: 02:00 jumps to 03:00, so 02:30 does not exist that night.
    window = _window("30 2 * * *", timedelta(hours=1), "Europe/Berlin")
    assert window.next_open(_at("2024-03-30T12:00:00+00:00")).isoformat() == "2024-03-31T03:00:00+02:00"
    assert window.is_open(_at("2024-03-31T01:15:00+00:00"))
    assert window.closes_at(_at("2024-03-31T01:15:00+00:00")) == _at("2024-03-31T04:00:00+02:00")
    assert not window.is_open(_at("2024-03-31T02:00:00+00:00"))


def test_fall_back_night_duration_is_elapsed_time_and_opens_once() -> None:
    # 2024-10-27 in Berlin: 03:00 CEST becomes 02:00 CET; a 3h window from 02:00 CEST ends at 03:00 UTC.
    window = _window(*NIGHTLY_BERLIN)
    assert window.is_open(_at("2024-10-27T00:00:00+00:00"))
    assert window.closes_at(_at("2024-10-27T00:00:00+00:00")) == _at("2024-10-27T03:00:00+00:00")
    assert window.is_open(_at("2024-10-27T02:59:00+00:00"))
    assert not window.is_open(_at("2024-10-27T03:00:00+00:00"))
    # A short window must not open a second time when 02:00 comes round again in CET.
    short = _window("0 2 * * *", timedelta(minutes=30), "Europe/Berlin")
    assert short.is_open(_at("2024-10-27T00:15:00+00:00"))
    assert not short.is_open(_at("2024-10-27T01:10:00+00:00"))
    assert short.next_open(_at("2024-10-27T00:45:00+00:00")).isoformat() == "2024-10-28T02:00:00+01:00"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        _window(*NIGHTLY_BERLIN).is_open(datetime(2024, 1, 1, 2, 0))


def test_describe() -> None:
    window = _window(*NIGHTLY_BERLIN)
    assert window.describe(_at("2024-01-15T01:30:00+00:00")) == "open until Mon 05:00 CET"
    assert window.describe(_at("2024-01-15T12:00:00+00:00")) == "opens Tue 2024-01-16 02:00 CET"


async def test_async_wait_open_returns_when_open() -> None:
    always = _window("* * * * *", timedelta(minutes=2), "UTC")
    closes = await asyncio.wait_for(always.async_wait_open(poll=0.05), 2)
    assert closes > datetime.now(UTC)


async def test_windows_addon_api(make_client) -> None:
    client = await make_client({"windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h",
                                                         "time_zone": "Europe/Berlin"},
                                            "weekend": {"cron": "0 2 * * 6,0", "duration": "4h"}}})
    assert (await client.get("/api/v1/windows")).status == 401
    data = await (await client.get("/api/v1/windows", headers=bearer("read"))).json()
    by_name = {w["name"]: w for w in data["windows"]}
    assert by_name["nightly"]["time_zone"] == "Europe/Berlin"
    assert by_name["weekend"]["time_zone"] == "UTC"  # falls back to dockmaster.time_zone
    assert by_name["nightly"]["duration"] == 3 * 3600
    status = await (await client.get("/api/v1/status", headers=bearer("read"))).json()
    assert set(status["windows"]) == {"nightly", "weekend"}
