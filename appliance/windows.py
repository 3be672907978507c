"""Maintenance windows: a cron start plus a duration, read in a time zone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
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
        start = croniter(self.cron, local + timedelta(seconds=1)).get_prev(datetime)
        if start <= local < start + self.duration:
            return start
        return None

    def is_open(self, now: datetime | None = None) -> bool:
        """True when `now` is inside an opening."""
        return self.current_opening(now) is not None

    def closes_at(self, now: datetime | None = None) -> datetime | None:
        """When the current opening ends, or None when closed."""
        start = self.current_opening(now)
        return start + self.duration if start else None

    def next_open(self, now: datetime | None = None) -> datetime:
        """`now` when open, else the next time the window opens."""
        local = self._local(now)
        if self.is_open(local):
            return local
        return croniter(self.cron, local).get_next(datetime)

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
