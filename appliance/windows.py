"""Maintenance windows: a cron start plus a duration, read in a time zone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter


@dataclass(frozen=True)
class MaintenanceWindow:
    """A named window that opens on `cron` and stays open for `duration`."""

    name: str
    cron: str
    duration: timedelta
    time_zone: str = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        """The zone the cron expression is read in."""
        return ZoneInfo(self.time_zone)

    def _local(self, now: datetime | None) -> datetime:
        now = now or datetime.now(self.tz)
        if now.tzinfo is None:
            raise ValueError("now must be time-zone aware")
        return now.astimezone(self.tz)

    def current_opening(self, now: datetime | None = None) -> datetime | None:
        """The start of the opening that contains `now`, or None when closed."""
        local = self._local(now)
        # The latest start at or before now; +1 s so a start exactly at `now` counts.
        starts = croniter(self.cron, local + timedelta(seconds=1))
        start = starts.get_prev(datetime)
        for _ in range(3):
            if not self._repeated(start):
                break
            start = starts.get_prev(datetime)
        # The duration is elapsed time: adding it in UTC keeps a 3h window 3h long on DST nights
        # (aware local arithmetic would add wall-clock hours).
        # Compared as instants: aware datetimes in one zone compare by wall clock, which is
        # wrong in the hour that repeats when clocks go back.
        if start.timestamp() <= local.timestamp() < self._end(start).timestamp():
            return start
        return None

    def _repeated(self, moment: datetime) -> bool:
        """True for the second pass through a wall-clock time when clocks go back: cron opens once."""
        first = moment.replace(tzinfo=None).replace(tzinfo=self.tz, fold=0)
        return first.utcoffset() != moment.utcoffset()

    def _end(self, start: datetime) -> datetime:
        return (start.astimezone(UTC) + self.duration).astimezone(self.tz)

    def is_open(self, now: datetime | None = None) -> bool:
        """True when `now` is inside an opening."""
        return self.current_opening(now) is not None

    def closes_at(self, now: datetime | None = None) -> datetime | None:
        """When the current opening ends, or None when closed."""
        start = self.current_opening(now)
        return self._end(start) if start else None

    def next_open(self, now: datetime | None = None) -> datetime:
        """`now` when open, else the next time the window opens."""
        local = self._local(now)
        if self.is_open(local):
            return local
        starts = croniter(self.cron, local)
        start: datetime = starts.get_next(datetime)
        for _ in range(3):
            if not self._repeated(start):
                break
            start = starts.get_next(datetime)
        return start

    def describe(self, now: datetime | None = None) -> str:
        """A short human phrase: 'open until 05:00' or 'opens Sat 02:00'."""
        closes = self.closes_at(now)
        if closes:
            return f"open until {closes:%a %H:%M %Z}"
        return f"opens {self.next_open(now):%a %Y-%m-%d %H:%M %Z}"

    async def async_wait_open(self, *, poll: float = 30.0) -> datetime:
        """Sleep until the window is open; returns the time it closes."""
        while True:
            now = datetime.now(self.tz)
            closes = self.closes_at(now)
            if closes:
                return closes
            delay = (self.next_open(now) - now).total_seconds()
            await asyncio.sleep(max(0.05, min(delay, poll)))
