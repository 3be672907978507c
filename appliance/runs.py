"""Runs: every unit of work is a row with a reason, a status, a capped live log and details."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .bus import EventBus
from .const import FINAL_STATUSES, RUN_LOG_CAP
from .events import RunFinished, RunLog, RunStarted
from .store import Store

_TRUNCATED = "[... earlier lines dropped: log over its size cap ...]"
# Why a run cut off by a stop (SIGTERM, a container stop or restart) is `interrupted`.
SHUTDOWN_RUNNING = "Dockmaster shut down while this run was in progress"
SHUTDOWN_QUEUED = "Dockmaster shut down before this run started"
_MAX_LINE = 16 * 1024


def _line_size(line: str) -> int:
    """Bytes a line takes in the stored log, its newline included."""
    return len(line.encode("utf-8", "replace")) + 1


def _clip(line: str) -> str:
    """Cut a single huge line (a binary dump, a minified file) so one line cannot fill the log."""
    if len(line) <= _MAX_LINE:
        return line
    return line[:_MAX_LINE] + f" [... {len(line) - _MAX_LINE} characters cut]"


class Redactor:
    """Replaces known secret values with `***` in anything shown to a person."""

    def __init__(self) -> None:
        """Start with no secrets."""
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        """Remember secret values (short values are ignored to avoid mangling text)."""
        for value in values:
            if value and len(value) >= 4:
                self._values.add(value)

    def __call__(self, text: str) -> str:
        """Return `text` with every known secret replaced."""
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, "***")
        return text


@dataclass
class Run:
    """A run in progress or finished; `log()` appends to its capped log and streams it live."""

    id: int
    kind: str
    target: str
    trigger: str
    actor: str | None
    reason: str
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    size: int = 0
    appended: int = 0  # lines ever logged, dropped ones included: followers count against this
    manager: RunManager | None = field(default=None, repr=False)
    secrets: Redactor = field(default_factory=Redactor, repr=False)

    def log(self, message: str) -> None:
        """Append one or more lines (secrets redacted) to the log."""
        if self.manager is None:
            return
        redacted = self.manager.redactor(self.secrets(message))
        new = redacted.splitlines() or [""]
        stamp = time.strftime("%H:%M:%S")
        new = [_clip(f"{stamp} {line}") for line in new]
        self.lines.extend(new)
        self.appended += len(new)
        self.size += sum(_line_size(line) for line in new)
        if self.size > RUN_LOG_CAP:
            self._trim()
        self.manager.log_appended(self, new)

    def _trim(self) -> None:
        """Drop the oldest lines to a little under the cap (so this runs rarely) behind one marker."""
        if self.lines and self.lines[0] == _TRUNCATED:
            self.lines.pop(0)
            self.size -= _line_size(_TRUNCATED)
        target = RUN_LOG_CAP - RUN_LOG_CAP // 16 - _line_size(_TRUNCATED)
        drop = 0
        while self.size > target and drop < len(self.lines) - 1:
            self.size -= _line_size(self.lines[drop])
            drop += 1
        del self.lines[:drop]
        self.lines.insert(0, _TRUNCATED)
        self.size += _line_size(_TRUNCATED)

    @property
    def text(self) -> str:
        """The log as one string."""
        return "\n".join(self.lines)

    def as_dict(self, *, with_log: bool = False) -> dict[str, Any]:
        """JSON-friendly form of the run."""
        data = {
            "id": self.id, "kind": self.kind, "target": self.target, "trigger": self.trigger,
            "actor": self.actor, "reason": self.reason, "status": self.status,
            "created": self.created, "started": self.started, "finished": self.finished,
            "error": self.error, "details": self.details,
        }
        if with_log:
            data["log"] = self.text
        return data


class RunManager:
    """Creates, tracks and finishes runs; live runs are kept in memory for streaming logs."""

    def __init__(self, store: Store, bus: EventBus, redactor: Redactor) -> None:
        """Bind the store, the bus and the global redactor."""
        self.store = store
        self.bus = bus
        self.redactor = redactor
        self.active: dict[int, Run] = {}
        self._dirty: set[int] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._log_waiters: dict[int, list[asyncio.Event]] = {}
        # Set when the process stops: work cancelled from then on was interrupted, not cancelled by someone.
        self.stopping = False

    async def create(
        self,
        kind: str,
        target: str,
        *,
        trigger: str,
        reason: str,
        actor: str | None = None,
        status: str = "queued",
        details: dict[str, Any] | None = None,
    ) -> Run:
        """Insert a new run (queued by default) and keep it live."""
        now = time.time()
        details = details or {}
        started = now if status == "running" else None
        run_id = await self.store.execute(
            "INSERT INTO runs (kind, target, trigger, actor, reason, status, created, started, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, target, trigger, actor, reason, status, now, started, json.dumps(details, default=str)),
        )
        assert run_id is not None
        run = Run(run_id, kind, target, trigger, actor, reason, status, now, started, details=details, manager=self)
        self.active[run_id] = run
        if status == "running":
            self._fire_started(run)
        return run

    def _fire_started(self, run: Run) -> None:
        self.bus.async_fire(
            RunStarted(run_id=run.id, kind=run.kind, target=run.target, trigger=run.trigger, reason=run.reason)
        )

    def start(self, run: Run, *, reason: str | None = None) -> None:
        """Mark a queued run as running."""
        run.status = "running"
        run.started = time.time()
        if reason:
            run.reason = reason
        self.store.enqueue(
            "UPDATE runs SET status = 'running', started = ?, reason = ? WHERE id = ?",
            (run.started, run.reason, run.id),
        )
        self._fire_started(run)

    def update(self, run: Run, *, reason: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Change a run's reason or merge details while it is live."""
        if reason is not None:
            run.reason = reason
        if details:
            run.details.update(details)
        self.store.enqueue(
            "UPDATE runs SET reason = ?, details = ? WHERE id = ?",
            (run.reason, json.dumps(run.details, default=str), run.id),
        )

    async def finish(self, run: Run, status: str, *, error: str | None = None) -> None:
        """Give a run its final status and persist its log."""
        assert status in FINAL_STATUSES, status
        run.status = status
        run.finished = time.time()
        run.error = self.redactor(run.secrets(error)) if error else None
        self._dirty.discard(run.id)
        await self.store.execute(
            "UPDATE runs SET status = ?, finished = ?, error = ?, log = ?, details = ?, reason = ?, "
            "started = COALESCE(started, ?) WHERE id = ?",
            (status, run.finished, run.error, run.text, json.dumps(run.details, default=str),
             run.reason, run.finished, run.id),
        )
        self.active.pop(run.id, None)
        self._wake(run.id)
        self.bus.async_fire(
            RunFinished(run_id=run.id, kind=run.kind, target=run.target, status=status,
                        reason=run.reason, error=run.error)
        )

    @asynccontextmanager
    async def track(
        self, kind: str, target: str, *, trigger: str, reason: str, actor: str | None = None,
        details: dict[str, Any] | None = None, run: Run | None = None,
    ) -> AsyncIterator[Run]:
        """Run a block as a run: succeeded on exit, failed on exception, cancelled on cancel."""
        if run is None:
            run = await self.create(kind, target, trigger=trigger, reason=reason, actor=actor,
                                    status="running", details=details)
        elif run.status == "queued":
            self.start(run)
        try:
            yield run
        except asyncio.CancelledError:
            if self.stopping:
                await asyncio.shield(self.finish(run, "interrupted", error=SHUTDOWN_RUNNING))
            else:
                await asyncio.shield(self.finish(run, "cancelled", error="cancelled"))
            raise
        except TimeoutError:
            run.log("timed out")
            await self.finish(run, "failed", error="timed out")
            raise
        except Exception as err:
            run.log(f"error: {err}")
            await self.finish(run, "failed", error=str(err) or type(err).__name__)
            raise
        else:
            if run.status not in FINAL_STATUSES:
                await self.finish(run, "succeeded")

    async def async_interrupt_live(self) -> int:
        """At shutdown, once the work is cancelled: record every run still live as `interrupted`.

        So the stopping process writes why its runs ended, and the next start finds nothing to repair.
        """
        self.stopping = True
        live = [run for run in self.active.values() if run.status not in FINAL_STATUSES]
        for run in live:
            run.log("stopped: Dockmaster is shutting down")
            why = SHUTDOWN_RUNNING if run.status == "running" else SHUTDOWN_QUEUED
            await self.finish(run, "interrupted", error=why)
        return len(live)

    # --- live log -----------------------------------------------------------------------

    def log_appended(self, run: Run, lines: list[str]) -> None:
        """Stream new lines and schedule a persist of the log (cheap, batched)."""
        self.bus.async_fire(RunLog(run_id=run.id, lines=lines))
        self._wake(run.id)
        self._dirty.add(run.id)
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(1.0, self._flush_logs)

    def _flush_logs(self) -> None:
        self._flush_handle = None
        rows = [(self.active[rid].text, rid) for rid in self._dirty if rid in self.active]
        self._dirty.clear()
        if rows:
            self.store.enqueue_many("UPDATE runs SET log = ? WHERE id = ?", rows)

    def _wake(self, run_id: int) -> None:
        for waiter in self._log_waiters.pop(run_id, []):
            waiter.set()

    async def wait_log(self, run_id: int, timeout: float) -> None:  # noqa: ASYNC109 - a bounded wait, not a deadline
        """Wait until a live run logs more or finishes, or `timeout` seconds pass (for streaming logs)."""
        waiter = asyncio.Event()
        waiters = self._log_waiters.setdefault(run_id, [])
        waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout)
        finally:
            # A follower that timed out or went away must not leave its waiter behind.
            if waiter in self._log_waiters.get(run_id, []):
                self._log_waiters[run_id].remove(waiter)
                if not self._log_waiters[run_id]:
                    del self._log_waiters[run_id]

    # --- queries ------------------------------------------------------------------------

    async def get(self, run_id: int) -> dict[str, Any] | None:
        """One run with its log (the live copy when it is still running)."""
        if run_id in self.active:
            return self.active[run_id].as_dict(with_log=True)
        row = await self.store.fetchone("SELECT * FROM runs WHERE id = ?", (run_id,))
        return _row_to_run(row, with_log=True) if row else None

    async def list(
        self, *, kind: str | None = None, target: str | None = None, status: str | None = None,
        limit: int = 50, before: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runs newest first, filtered; `before` is the id to page from."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("kind", kind), ("target", target), ("status", status)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if before:
            where.append("id < ?")
            params.append(before)
        # Only fixed column names are joined into the SQL; every value is a bound parameter.
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self.store.fetchall(
            "SELECT id, kind, target, trigger, actor, reason, status, created, started, finished, "  # noqa: S608
            f"error, details FROM runs {clause} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        result = [_row_to_run(row) for row in rows]
        for item in result:  # live runs: show the in-memory status and reason
            live = self.active.get(item["id"])
            if live is not None:
                item.update(status=live.status, reason=live.reason, started=live.started)
        return result


def _row_to_run(row: dict[str, Any], *, with_log: bool = False) -> dict[str, Any]:
    data = dict(row)
    data["details"] = json.loads(data.get("details") or "{}")
    if not with_log:
        data.pop("log", None)
    return data
