"""The operation registry: typed, allowlisted operations with scopes, per-target locks, runs and audit."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import voluptuous as vol
from voluptuous_openapi import convert

from appliance.errors import Conflict, DockmasterError, ValidationFailed
from appliance.http.routes import validate

from .events import OperationFinished

if TYPE_CHECKING:
    from appliance.core import Appliance
    from appliance.runs import Run
    from appliance.windows import MaintenanceWindow

_LOGGER = logging.getLogger(__name__)

Scope = Literal["read", "deploy", "admin"]
LockPolicy = Literal["reject", "queue", "none"]
Handler = Callable[["OpContext"], Awaitable[Any]]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


class OperationFailed(DockmasterError):
    """An operation ran and failed (the run record holds the details)."""

    status = 500
    code = "operation_failed"


@dataclass
class Target:
    """How an operation names what it acts on: a validator, a lock key and words for the docs."""

    validator: Callable[[Any], str]
    description: str
    lock_key: Callable[[str], str] = lambda value: value
    pattern: str | None = None


@dataclass
class Operation:
    """One allowlisted operation: what it takes, who may run it, how it locks, how long it may take."""

    name: str
    summary: str
    handler: Handler
    args: vol.Schema = field(default_factory=lambda: vol.Schema({}))
    scope: Scope = "read"
    target: Target | None = None
    lock: LockPolicy = "none"
    timeout: float = 60.0
    background: bool = False
    kind: str = "operation"
    # Disruptive work bound to a maintenance window waits (queued) until it opens.
    window: Callable[[OpContext], MaintenanceWindow | None] | None = None

    def __post_init__(self) -> None:
        """Refuse names that would not be safe in a URL and schemas that accept unknown keys."""
        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid operation name {self.name!r}")
        if not isinstance(self.args, vol.Schema):
            self.args = vol.Schema(self.args)
        if self.args.extra != vol.PREVENT_EXTRA:
            raise ValueError(f"operation {self.name}: the argument schema must refuse extra keys")
        if self.lock != "none" and self.target is None:
            raise ValueError(f"operation {self.name}: a lock needs a target")

    def describe(self) -> dict[str, Any]:
        """The operation as JSON: arguments as JSON Schema (extra keys refused), scope, lock, timeout."""
        schema = convert(self.args)
        schema["additionalProperties"] = False
        target: dict[str, Any] | None = None
        if self.target is not None:
            target = {"required": True, "description": self.target.description}
            if self.target.pattern:
                target["pattern"] = self.target.pattern
        return {
            "name": self.name, "summary": self.summary, "scope": self.scope, "lock": self.lock,
            "timeout": self.timeout, "background": self.background, "target": target, "args": schema,
        }


@dataclass
class OpContext:
    """What a handler gets: the appliance, the validated target and arguments, and its run."""

    app: Appliance
    op: Operation
    target: str
    args: dict[str, Any]
    run: Run
    actor: str
    # Whether the caller holds a scope; the scheduler and the appliance itself hold every scope.
    allows: Callable[[str], bool] = field(default=lambda scope: True)


@dataclass
class OpOutcome:
    """The result of starting an operation: its run id, final status and result (when awaited)."""

    run_id: int
    status: str
    result: Any = None
    error: str | None = None
    task: asyncio.Task[Any] | None = field(default=None, repr=False)


class OperationRegistry:
    """Holds the allowlist; validates, locks, runs, records and audits every operation."""

    def __init__(self, app: Appliance) -> None:
        """Start with no operations; the ops addon registers the built-in ones."""
        self.app = app
        self.operations: dict[str, Operation] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_probes: dict[str, Any] | None = None

    def register(self, op: Operation) -> Operation:
        """Add an operation (other addons call this from their `async_setup`)."""
        if op.name in self.operations:
            raise ValueError(f"operation {op.name} is already registered")
        self.operations[op.name] = op
        return op

    def describe(self) -> list[dict[str, Any]]:
        """Every operation as JSON, sorted by name."""
        return [self.operations[name].describe() for name in sorted(self.operations)]

    def get(self, name: str) -> Operation:
        """The named operation; unknown names are a 400 (nothing runs)."""
        op = self.operations.get(name)
        if op is None:
            raise ValidationFailed(f"unknown operation '{name[:64]}'", details={"known": sorted(self.operations)})
        return op

    def check(self, op: Operation, target: str | None, args: Any) -> tuple[str, dict[str, Any]]:
        """Validate the target and arguments before anything runs (ValidationFailed is a 400)."""
        if op.target is None:
            if target not in (None, ""):
                raise ValidationFailed(f"operation {op.name} takes no target")
            target_value = ""
        else:
            if target in (None, ""):
                raise ValidationFailed(f"operation {op.name} needs a target ({op.target.description})")
            try:
                target_value = op.target.validator(target)
            except vol.Invalid as err:
                raise ValidationFailed(f"invalid target: {err.msg}") from None
        return target_value, validate(op.args, args if args is not None else {}, where="args")

    def busy(self, lock_key: str) -> bool:
        """True while an operation holds the lock of `lock_key`."""
        lock = self._locks.get(lock_key)
        return bool(lock and lock.locked())

    async def async_run(
        self, name: str, target: str | None = None, args: Any = None, *, actor: str,
        trigger: str = "api", source: str | None = None, wait: bool | None = None,
        allows: Callable[[str], bool] | None = None,
    ) -> OpOutcome:
        """Validate, lock and run an operation as a run with an audit row.

        Raises ValidationFailed (400) for unknown operations, targets or arguments, and Conflict (409)
        when the target is busy under the `reject` policy. With `wait` (default: not `background`)
        the outcome carries the result; a failure is raised as the handler's error or OperationFailed.
        """
        op = self.get(name)
        try:
            target_value, clean = self.check(op, target, args)
        except ValidationFailed as err:
            self.app.store.audit(actor, f"op:{op.name}", str(target or "")[:200], source=source,
                                 outcome="invalid", details={"error": err.message})
            raise
        lock_key = f"op:{op.target.lock_key(target_value)}" if op.target and op.lock != "none" else None
        lock = self._locks.setdefault(lock_key, asyncio.Lock()) if lock_key else None
        if lock is not None and op.lock == "reject" and lock.locked():
            self.app.store.audit(actor, f"op:{op.name}", target_value, source=source, outcome="rejected",
                                 details={"args": clean, "error": "target busy"})
            raise Conflict(f"{target_value} is busy with another operation", details={"target": target_value})
        if lock is not None and op.lock == "reject":
            # Taken before the first await so a second caller sees it at once.
            await lock.acquire()
            held = True
        else:
            held = False
        try:
            run = await self.app.runs.create(
                op.kind, f"{op.name}:{target_value}" if target_value else op.name, trigger=trigger,
                actor=actor, reason=f"{op.name} requested by {actor}",
                details={"operation": op.name, "target": target_value, "args": clean},
            )
        except BaseException:
            if held and lock is not None:
                lock.release()
            raise
        ctx = OpContext(self.app, op, target_value, clean, run, actor)
        if allows is not None:
            ctx.allows = allows
        task = asyncio.create_task(self._execute(ctx, lock, held, source), name=f"op:{op.name}:{run.id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if wait is None:
            wait = not op.background
        if not wait:
            return OpOutcome(run.id, run.status, task=task)
        # Shielded: a client that goes away must not cancel an operation halfway.
        result = await asyncio.shield(task)
        return OpOutcome(run.id, run.status, result=result, error=run.error)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # background failures live in the run record; mark them retrieved

    async def _execute(self, ctx: OpContext, lock: asyncio.Lock | None, held: bool, source: str | None) -> Any:
        op, run = ctx.op, ctx.run
        started = time.monotonic()
        outcome = "failed"
        error: str | None = None
        try:
            window = op.window(ctx) if op.window else None
            while True:
                if window is not None and not window.is_open():
                    when = f"{window.next_open():%Y-%m-%d %H:%M %Z}"
                    self.app.runs.update(run, reason=f"waiting for window {window.name} at {when}")
                    await window.async_wait_open()
                if lock is not None and not held:
                    if lock.locked():
                        self.app.runs.update(run, reason=f"waiting for another operation on {ctx.target}")
                    await lock.acquire()
                    held = True
                if window is None or window.is_open():
                    break
                # The window closed while this waited for the lock: never start after it closes.
                if lock is not None and op.lock != "reject":
                    lock.release()
                    held = False
            async with self.app.runs.track(op.kind, run.target, trigger=run.trigger, reason=run.reason,
                                           actor=ctx.actor, run=run):
                async with asyncio.timeout(op.timeout):
                    result = await op.handler(ctx)
            outcome = "succeeded"
            return result
        except TimeoutError:
            error = f"timed out after {op.timeout:.0f}s"
            raise DockmasterError(f"{op.name} {error}") from None
        except DockmasterError as err:
            error = err.message
            raise
        except asyncio.CancelledError:
            outcome, error = "cancelled", "cancelled"
            raise
        except Exception as err:
            error = str(err) or type(err).__name__
            _LOGGER.warning("Operation %s on %s failed: %s", op.name, ctx.target or "-", error)
            raise OperationFailed(f"{op.name} failed: {error}", details={"run_id": run.id}) from None
        finally:
            if held and lock is not None:
                lock.release()
            duration = round(time.monotonic() - started, 3)
            self.app.store.audit(
                ctx.actor, f"op:{op.name}", ctx.target, source=source, outcome=outcome,
                details={"args": ctx.args, "run_id": run.id, "duration": duration, "error": error},
            )
            self.app.bus.async_fire(
                OperationFinished(operation=op.name, target=ctx.target, actor=ctx.actor, outcome=outcome)
            )

    async def async_stop(self) -> None:
        """Cancel operations still running at shutdown and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
