"""The scheduler: single flight per key, one trailing run at the newest trigger, timeouts, cron in a zone."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.scheduler import Scheduler


class Recorder:
    """Factories that record which trigger ran and how many ran at once."""

    def __init__(self, hold: float = 0.0) -> None:
        self.ran: list[int] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self.release = asyncio.Event()
        self.hold = hold

    def factory(self, label: int):
        async def _job() -> int:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
            try:
                if self.hold:
                    await asyncio.sleep(self.hold)
                else:
                    await self.release.wait()
                self.ran.append(label)
                return label
            finally:
                self.concurrent -= 1

        return _job


async def test_ten_triggers_during_a_run_give_exactly_one_trailing_run_at_the_newest() -> None:
    scheduler = Scheduler()
    rec = Recorder()
    first = scheduler.submit("stack:web", rec.factory(0))
    assert first.outcome == "started"
    await asyncio.sleep(0)
    later = [scheduler.submit("stack:web", rec.factory(i)) for i in range(1, 11)]
    assert {s.outcome for s in later} == {"coalesced"}
    assert len({id(s.future) for s in later}) == 1  # every coalesced trigger waits on the one trailing run
    assert scheduler.busy("stack:web")
    rec.release.set()
    assert await first.future == 0
    assert await later[0].future == 10
    await asyncio.sleep(0.01)
    assert rec.ran == [0, 10]
    assert rec.max_concurrent == 1
    assert not scheduler.busy("stack:web")


async def test_different_keys_run_in_parallel() -> None:
    scheduler = Scheduler()
    rec = Recorder(hold=0.05)
    subs = [scheduler.submit(f"host:{i}", rec.factory(i)) for i in range(3)]
    await asyncio.gather(*(s.future for s in subs))
    assert rec.max_concurrent == 3
    assert sorted(rec.ran) == [0, 1, 2]


async def test_reject_policy_refuses_a_busy_key() -> None:
    scheduler = Scheduler()
    rec = Recorder()
    scheduler.submit("op:reboot", rec.factory(0))
    await asyncio.sleep(0)
    second = scheduler.submit("op:reboot", rec.factory(1), policy="reject")
    assert second.outcome == "rejected"
    assert await second.future is None
    rec.release.set()
    await asyncio.sleep(0.01)
    assert rec.ran == [0]


async def test_timeout_fails_the_job_and_frees_the_key() -> None:
    scheduler = Scheduler()
    rec = Recorder()  # never released: only the timeout ends it
    sub = scheduler.submit("slow", rec.factory(0), timeout=0.05)
    with pytest.raises(TimeoutError):
        await sub.future
    await asyncio.sleep(0)
    assert not scheduler.busy("slow")
    quick = scheduler.submit("slow", Recorder(hold=0.001).factory(1))
    assert quick.outcome == "started"
    assert await quick.future == 1


async def test_trailing_run_uses_its_own_timeout() -> None:
    scheduler = Scheduler()
    rec = Recorder()
    scheduler.submit("k", rec.factory(0))
    await asyncio.sleep(0)
    trailing = scheduler.submit("k", Recorder().factory(1), timeout=0.05)  # never released
    rec.release.set()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(trailing.future, 2)


async def test_a_failing_job_does_not_block_its_trailing_run() -> None:
    scheduler = Scheduler()
    gate = asyncio.Event()

    async def boom() -> None:
        await gate.wait()
        raise RuntimeError("deploy failed")

    first = scheduler.submit("k", boom)
    await asyncio.sleep(0)
    trailing = scheduler.submit("k", Recorder(hold=0.001).factory(7))
    gate.set()
    with pytest.raises(RuntimeError, match="deploy failed"):
        await first.future
    assert await trailing.future == 7


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("zone", "cron", "after", "expected"),
    [
        ("UTC", "0 2 * * *", "2024-01-15T10:00:00+00:00", "2024-01-16T02:00:00+00:00"),
        ("Europe/Berlin", "0 2 * * *", "2024-01-15T10:00:00+00:00", "2024-01-16T01:00:00+00:00"),
        ("Europe/Berlin", "0 2 * * *", "2024-07-15T10:00:00+00:00", "2024-07-16T00:00:00+00:00"),
        ("America/New_York", "30 3 * * 6", "2024-01-15T10:00:00+00:00", "2024-01-20T08:30:00+00:00"),
        ("Asia/Kolkata", "*/15 * * * *", "2024-01-15T10:07:00+00:00", "2024-01-15T10:15:00+00:00"),
    ],
)
def test_cron_next_fire_in_the_schedulers_time_zone(zone: str, cron: str, after: str, expected: str) -> None:
    scheduler = Scheduler(zone)
    fire = scheduler.next_fire(cron, _epoch(after))
    assert datetime.fromtimestamp(fire, UTC) == datetime.fromisoformat(expected)


def test_cron_next_fire_across_a_dst_change() -> None:
    scheduler = Scheduler("Europe/Berlin")
    # The night clocks go forward (2024-03-31): 01:30 local happens once, in CET (UTC+1).
    fire = scheduler.next_fire("30 1 * * *", _epoch("2024-03-30T12:00:00+00:00"))
    assert datetime.fromtimestamp(fire, ZoneInfo("Europe/Berlin")).isoformat() == "2024-03-31T01:30:00+01:00"
    # And the next day it is 01:30 CEST (UTC+2).
    fire = scheduler.next_fire("30 1 * * *", fire + 60)
    assert datetime.fromtimestamp(fire, ZoneInfo("Europe/Berlin")).isoformat() == "2024-04-01T01:30:00+02:00"


async def test_cron_job_fires_and_reschedules_with_jitter() -> None:
    scheduler = Scheduler()
    fired = asyncio.Event()
    calls: list[float] = []

    async def job() -> None:
        calls.append(time.time())
        fired.set()

    cron_job = scheduler.add_cron("poll", "*/5 * * * *", job, jitter=30, timeout=5)
    first_planned = cron_job.next_run
    assert 0 <= first_planned - scheduler.next_fire("*/5 * * * *", time.time()) <= 30
    cron_job.next_run = time.time()  # due now
    await scheduler.async_start()
    try:
        await asyncio.wait_for(fired.wait(), 2)
        await asyncio.sleep(0.01)
        assert cron_job.runs == 1 and len(calls) == 1
        assert cron_job.last_error is None
        assert cron_job.next_run > time.time()
    finally:
        await scheduler.async_stop()


async def test_cron_job_error_is_kept_and_stop_cancels_work() -> None:
    scheduler = Scheduler()

    async def failing() -> None:
        raise ValueError("remote unreachable")

    job = scheduler.add_cron("bad", "* * * * *", failing)
    job.next_run = time.time()
    await scheduler.async_start()
    try:
        for _ in range(100):
            if job.last_error:
                break
            await asyncio.sleep(0.01)
        assert job.last_error == "remote unreachable"
    finally:
        await scheduler.async_stop()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    sub = scheduler.submit("long", forever)
    await started.wait()
    await scheduler.async_stop()
    assert sub.future.cancelled()
    assert not scheduler.busy("long")
