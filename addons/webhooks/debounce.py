"""Per-repo debounce: a quiet repo syncs at once; a burst of pushes folds into one trailing sync."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance.core import Appliance
from appliance.runs import Run

_LOGGER = logging.getLogger(__name__)

# A steady stream of pushes must not postpone the sync forever: the fold fires at the latest
# this many debounce periods after its first delivery.
MAX_WAIT_FACTOR = 5


class SyncRequester(Protocol):
    """The part of the repos addon's RepoManager that webhooks call."""

    async def async_request_sync(self, name: str, *, trigger: str, reason: str, actor: str | None = None) -> int:
        """Return at once with the id of the sync run that will cover this trigger."""


@dataclass
class _Fold:
    """Deliveries waiting for the burst to settle, and the run that stands for them."""

    first: float
    last: float
    reason: str
    actor: str
    count: int = 1
    run: asyncio.Future[Run] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SyncDebouncer:
    """Requests syncs for one repo: at once when quiet, else one trailing request after the burst."""

    def __init__(self, app: Appliance, repo: str, debounce: float, repos: SyncRequester) -> None:
        """Bind the repo and its debounce period (0 turns folding off: every push requests a sync)."""
        self.app = app
        self.repo = repo
        self.debounce = debounce
        self.repos = repos
        self._last_request = float("-inf")
        self._fold: _Fold | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def pending(self) -> bool:
        """True while a fold waits for its burst to settle."""
        return self._fold is not None

    async def async_push(self, reason: str, actor: str) -> tuple[int, str]:
        """Cover one push; returns (run id, "accepted" | "debounced")."""
        now = time.monotonic()
        fold = self._fold
        if fold is not None:
            fold.count += 1
            fold.last = now
            fold.reason = reason
            return (await fold.run).id, "debounced"
        if self.debounce <= 0 or now - self._last_request >= self.debounce:
            # Set before awaiting so that a concurrent push sees the window open and folds.
            self._last_request = now
            run_id = await self.repos.async_request_sync(self.repo, trigger="webhook", reason=reason, actor=actor)
            return run_id, "accepted"
        fold = self._fold = _Fold(first=now, last=now, reason=reason, actor=actor)
        try:
            run = await self.app.runs.create(
                "webhook", self.repo, trigger="webhook", actor=actor,
                reason=f"waiting {self.debounce:g}s for more pushes to {self.repo} before syncing",
            )
        except BaseException as err:
            self._fold = None
            fold.run.set_exception(err)
            fold.run.exception()  # consumed here; the waiters see it too
            raise
        fold.run.set_result(run)
        task = asyncio.create_task(self._async_fire(fold, run), name=f"webhooks:fold:{self.repo}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run.id, "debounced"

    async def _async_fire(self, fold: _Fold, run: Run) -> None:
        """Wait until no push came for `debounce` seconds (or the max wait passed), then request one sync."""
        try:
            while True:
                due = min(fold.last + self.debounce, fold.first + self.debounce * MAX_WAIT_FACTOR)
                wait = due - time.monotonic()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
        except asyncio.CancelledError:
            self._fold = None
            await asyncio.shield(self.app.runs.finish(run, "cancelled", error="stopped before the burst settled"))
            raise
        self._fold = None
        self._last_request = time.monotonic()
        deliveries = "1 delivery" if fold.count == 1 else f"{fold.count} deliveries"
        try:
            async with self.app.runs.track("webhook", self.repo, trigger="webhook", reason="", run=run) as run:
                self.app.runs.update(run, reason=f"{deliveries} folded into one sync; newest: {fold.reason}")
                sync_id = await self.repos.async_request_sync(
                    self.repo, trigger="webhook", actor=fold.actor,
                    reason=f"{fold.reason} ({deliveries} folded by the webhook debounce)",
                )
                run.log(f"{deliveries} folded; requested sync run #{sync_id}")
                self.app.runs.update(run, details={"sync_run_id": sync_id, "deliveries": fold.count})
        except Exception as err:  # the run already records the failure
            _LOGGER.warning("Webhook sync request for %s failed: %s", self.repo, err)

    async def async_stop(self) -> None:
        """Cancel waiting folds (their runs end `cancelled`; polling or the next push catches up)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
