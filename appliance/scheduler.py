"""Cron jobs with jitter, and single-flight work per target with coalescing of triggers."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from croniter import croniter

_LOGGER = logging.getLogger(__name__)

JobFactory = Callable[[], Awaitable[Any]]
Outcome = Literal["started", "coalesced", "rejected"]


@dataclass
class Submission:
    """What happened to a trigger: started now, folded into the trailing run, or rejected."""

    outcome: Outcome
    future: asyncio.Future[Any]


@dataclass
class _Slot:
    task: asyncio.Task[Any] | None = None
    trailing: JobFactory | None = None
    trailing_timeout: float | None = None
    trailing_future: asyncio.Future[Any] | None = None
    coalesced: int = 0


@dataclass
class CronJob:
    """A named job that runs on a cron schedule."""

    name: str
    cron: str
    factory: JobFactory
    jitter: float = 0.0
    timeout: float | None = None
    key: str | None = None
    next_run: float = 0.0
    last_run: float | None = None
    last_error: str | None = None
    runs: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)


class Scheduler:
    """Runs cron jobs and keyed work; one task per key, later triggers coalesce into one."""

    def __init__(self, time_zone: str = "UTC") -> None:
        """Create a scheduler whose cron expressions are read in `time_zone`."""
        self.tz = ZoneInfo(time_zone)
        self.jobs: dict[str, CronJob] = {}
        self._slots: dict[str, _Slot] = {}
        self._running = False

    # --- keyed single-flight -------------------------------------------------------------

    def submit(
        self, key: str, factory: JobFactory, *, timeout: float | None = None, policy: str = "coalesce"
    ) -> Submission:
        """Run `factory()` under `key`; while one runs, keep only the newest trigger as trailing.

        With policy `reject`, a trigger for a busy key is refused instead of queued.
        """
        loop = asyncio.get_running_loop()
        slot = self._slots.setdefault(key, _Slot())
        if slot.task is None or slot.task.done():
            future: asyncio.Future[Any] = loop.create_future()
            slot.task = loop.create_task(self._run_slot(key, factory, timeout, future), name=f"job:{key}")
            return Submission("started", future)
        if policy == "reject":
            future = loop.create_future()
            future.set_result(None)
            return Submission("rejected", future)
        slot.trailing = factory
        slot.trailing_timeout = timeout
        slot.coalesced += 1
        if slot.trailing_future is None:
            slot.trailing_future = loop.create_future()
        return Submission("coalesced", slot.trailing_future)

    def busy(self, key: str) -> bool:
        """True while work for `key` runs."""
        slot = self._slots.get(key)
        return bool(slot and slot.task and not slot.task.done())

    async def _run_slot(
        self, key: str, factory: JobFactory, limit: float | None, future: asyncio.Future[Any]
    ) -> None:
        slot = self._slots[key]
        while True:
            try:
                async with asyncio.timeout(limit):
                    result = await factory()
            except asyncio.CancelledError:
                if not future.done():
                    future.cancel()
                if slot.trailing_future and not slot.trailing_future.done():
                    slot.trailing_future.cancel()
                raise
            except Exception as err:
                if isinstance(err, TimeoutError):
                    _LOGGER.warning("Job %s timed out after %ss", key, limit)
                else:
                    _LOGGER.exception("Job %s failed", key)
                if not future.done():
                    future.set_exception(err)
                    future.exception()  # mark retrieved: callers may not await it
            else:
                if not future.done():
                    future.set_result(result)
            if slot.trailing is None:
                return
            factory, slot.trailing = slot.trailing, None
            limit = slot.trailing_timeout
            future, slot.trailing_future = slot.trailing_future or future, None
            slot.coalesced = 0

    # --- cron ----------------------------------------------------------------------------

    def add_cron(
        self, name: str, cron: str, factory: JobFactory, *, jitter: float = 0.0,
        timeout: float | None = None, key: str | None = None,
    ) -> CronJob:
        """Register a job run on `cron` (+ up to `jitter` seconds), single-flight under `key`."""
        job = CronJob(name, cron, factory, jitter=jitter, timeout=timeout, key=key or f"cron:{name}")
        job.next_run = self.next_fire(cron, time.time()) + random.uniform(0, jitter)
        self.jobs[name] = job
        if self._running:
            job._task = asyncio.create_task(self._cron_loop(job), name=f"cron:{name}")
        return job

    def next_fire(self, cron: str, after: float) -> float:
        """The next time (epoch seconds) `cron` fires after `after`, read in the scheduler's zone."""
        base = datetime.fromtimestamp(after, self.tz)
        return float(croniter(cron, base).get_next(float))

    async def async_start(self) -> None:
        """Start a loop per registered cron job."""
        self._running = True
        for job in self.jobs.values():
            if job._task is None:
                job._task = asyncio.create_task(self._cron_loop(job), name=f"cron:{job.name}")

    async def _cron_loop(self, job: CronJob) -> None:
        while True:
            await asyncio.sleep(max(0.0, job.next_run - time.time()))
            job.last_run = time.time()
            job.runs += 1
            submission = self.submit(job.key or job.name, job.factory, timeout=job.timeout)
            submission.future.add_done_callback(functools.partial(self._cron_done, job))
            job.next_run = self.next_fire(job.cron, time.time()) + random.uniform(0, job.jitter)

    @staticmethod
    def _cron_done(job: CronJob, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        err = fut.exception()
        job.last_error = str(err) if err else None

    async def async_stop(self) -> None:
        """Cancel cron loops and running work, and wait for them."""
        self._running = False
        tasks: list[asyncio.Task[Any]] = [j._task for j in self.jobs.values() if j._task]
        tasks += [s.task for s in self._slots.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self.jobs.values():
            job._task = None
