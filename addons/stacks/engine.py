"""The stack engine: which stacks a new revision touches, and single-flight deploy/rollback/dry-run queues."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets as token
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from addons.engines.contract import ENGINES
from addons.repos.contract import REPOS, Commit, RepoSynced
from appliance.engines import LOCAL
from appliance.errors import Conflict, NotFound
from appliance.runs import Run
from appliance.windows import MaintenanceWindow

from . import secrets
from .catalogue import Catalogue
from .compose import ComposeRunner
from .deployer import DeployAborted, Deployer
from .lifecycle import ACTIONS, Lifecycle, Orphans
from .models import DeployRequest, StackSpec
from .relocation import Relocation
from .scope import ChangeScope, held_back
from .state import StateStore
from .workdir import read_manifest

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .drift import DriftWatcher

_LOGGER = logging.getLogger(__name__)


class StackEngine:
    """Owns the stack specs and state, decides what to deploy and runs it one flight per stack."""

    def __init__(self, app: Appliance, conf: dict[str, Any]) -> None:
        """Build from the validated `stacks:` block; nothing runs until `async_setup`."""
        self.app = app
        self.conf = conf
        self.settings: dict[str, Any] = conf["settings"]
        self.catalogue = Catalogue(conf)
        self.states = StateStore(app.store)
        self.compose = ComposeRunner()
        self.deployer: Deployer | None = None
        self._pending: dict[str, DeployRequest] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._parallel = asyncio.Semaphore(self.settings["max_parallel"])
        self.lifecycle = Lifecycle(self)
        self.scope = ChangeScope(self)
        self.orphans = Orphans(self)
        self.relocation = Relocation(self)
        self.drift: DriftWatcher | None = None  # set by the addon's setup

    # --- setup --------------------------------------------------------------------------

    def check_references(self) -> list[str]:
        """Problems with repo and window names the config refers to."""
        return self.catalogue.check_references(self.app.data[REPOS], lambda name: self.app.window(name) is not None,
                                               self.app.engines.names())

    async def async_setup(self) -> None:
        """Load state, remove tmpfs leftovers of a crash, and prepare the deployer."""
        await self.states.async_load()
        # Only the process holding the data dir: a live daemon's folders are in use, not left over.
        prefix = secrets.dir_prefix(self.app.data_dir)
        removed = await self.app.async_run_blocking(secrets.remove_leftovers, prefix) if self.app.primary else 0
        if removed:
            _LOGGER.warning("Removed %d decrypted-secrets folder(s) left on tmpfs by an earlier crash", removed)
        key = await self.app.async_run_blocking(_digest_key, self.app.data_dir / "stacks")
        self.deployer = Deployer(self.app, self.states, self.compose, self.settings, key)
        for repo_name in {d["repo"] for d in self.conf["discover"]}:
            repo = self.app.data[REPOS].get(repo_name)
            if repo.head:
                await self.async_discover(repo_name, repo.head)

    # --- the catalogue, for the other parts of the addon -------------------------------------

    @property
    def discovered(self) -> dict[str, dict[str, StackSpec]]:
        """Stacks found by each repo's `discover` globs."""
        return self.catalogue.discovered

    @property
    def clashes(self) -> dict[str, str]:
        """Stack names made by two repos (refused on both), with why."""
        return self.catalogue.clashes

    def specs(self) -> dict[str, StackSpec]:
        """Every stack Dockmaster deploys."""
        return self.catalogue.specs()

    def spec(self, name: str) -> StackSpec:
        """One stack's spec; raises NotFound."""
        return self.catalogue.spec(name)

    def problems(self) -> list[str]:
        """Discovery problems a person must fix."""
        return self.catalogue.problems()

    async def async_discover(self, repo_name: str, revision: str) -> None:
        """Re-read every `discover` glob of a repo at a revision."""
        await self.catalogue.async_discover(self.app.data[REPOS], repo_name, revision)

    def running_engine(self, name: str) -> str:
        """The engine a stack runs on (the configured one until its first deploy)."""
        state = self.states.get(name)
        if state.engine:
            return state.engine
        spec = self.specs().get(name)
        if state.deployed_revision or spec is None:
            return LOCAL  # deployed before engines existed
        return spec.engine

    def engine_down(self, engine: str) -> bool:
        """True when the engine did not answer its last check."""
        fleet = self.app.data.get(ENGINES)
        return fleet is not None and fleet.reachable(engine) is False

    def auto_deploy(self, name: str) -> bool:
        """The stack's auto_deploy: the persisted UI toggle when set, else the config value."""
        state = self.states.get(name)
        return state.auto_deploy if state.auto_deploy is not None else self.spec(name).auto_deploy

    async def async_on_repo_synced(self, event: RepoSynced) -> None:
        """A repo moved: queue deploys for the stacks it touched."""
        await self.scope.async_on_repo_synced(event)

    async def async_evaluate(self, repo_name: str, revision: str, *, trigger: str,
                             actor: str | None = None) -> list[int]:
        """Queue a deploy for every stack of the repo whose content or inputs changed; returns run ids."""
        return await self.scope.async_evaluate(repo_name, revision, trigger=trigger, actor=actor)

    # --- queueing -----------------------------------------------------------------------

    async def async_request(self, kind: str, name: str, *, revision: str | None, trigger: str, reason: str,
                            actor: str | None = None, force: bool = False, auto: bool = False) -> Run:
        """Queue work for a stack; a deploy arriving while one is queued joins the queued one."""
        if kind not in ACTIONS:
            self.spec(name)
        elif not self.orphans.known(name):
            raise NotFound(f"no stack named '{name}'")
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if kind == "dry_run":
                run = await self.app.runs.create("deploy", name, trigger=trigger, reason=reason, actor=actor,
                                                 details={"dry_run": True, "revision": revision})
                request = DeployRequest("dry_run", name, run, trigger, actor, revision, force=True)
                self.app.scheduler.submit(f"stack-dry-run:{name}:{run.id}", lambda: self._async_execute(request))
                return run
            pending = self._pending.get(name)
            if pending is not None and pending.run.status == "queued":
                if kind == "deploy" and pending.kind == "deploy":
                    self._fold(pending, revision=revision, trigger=trigger, reason=reason, actor=actor, force=force,
                               auto=auto)
                    return pending.run
                # Another kind replaces the queued work; the replaced run says so.
                del self._pending[name]
                pending.run.log(f"superseded by a {kind} requested by {actor or trigger}")
                await self.app.runs.finish(pending.run, "cancelled", error=f"superseded by a {kind}")
            run_kind = kind if kind in ("rollback", "move", *ACTIONS) else "deploy"
            run = await self.app.runs.create(run_kind, name, trigger=trigger, reason=reason, actor=actor,
                                             details={"revision": revision})
            request = DeployRequest(kind, name, run, trigger, actor, revision, force=force, auto=auto)
            key = f"stack:{name}"
            if self.app.scheduler.busy(key):
                # The scheduler keeps one trailing job; it runs whatever is queued when its turn comes.
                self._pending[name] = request
                self.app.scheduler.submit(key, lambda: self._async_execute_next(name))
            else:
                self.app.scheduler.submit(key, lambda: self._async_execute(request))
            return run

    def _fold(self, pending: DeployRequest, *, revision: str | None, trigger: str, reason: str,
              actor: str | None, force: bool, auto: bool) -> None:
        # The trailing deploy runs at the newest revision; a person's request outranks an automatic one.
        pending.revision = revision
        if force or not pending.force:
            pending.trigger, pending.actor, pending.force = trigger, actor, force or pending.force
            pending.auto = auto
        pending.run.trigger = pending.trigger
        pending.run.actor = pending.actor
        self.app.runs.update(pending.run, reason=reason, details={"revision": revision})

    async def _async_execute_next(self, name: str) -> None:
        # The trailing factory runs whatever is queued now (it may have been folded or replaced).
        request = self._pending.pop(name, None)
        if request is not None and request.run.status == "queued":
            await self._async_execute(request)

    async def _async_execute(self, req: DeployRequest) -> None:
        """Run one request under its run, then roll back when a deploy changed containers and failed."""
        assert self.deployer is not None
        if req.kind in ACTIONS:
            await self.lifecycle.async_execute(req)
            self.states.get(req.stack).last_run_id = req.run.id
            return
        spec = self.specs().get(req.stack)
        run = req.run
        if spec is None:
            # Its folder left git, or its name clashed, while the run waited in the queue.
            await self.app.runs.finish(run, "cancelled", error=f"{req.stack} is no longer a stack Dockmaster deploys")
            return
        window = self.app.window(spec.window) if req.kind != "dry_run" else None
        aborted: DeployAborted | None = None
        try:
            async with (
                self._slot_in_window(spec, run, window),
                self.app.runs.track(run.kind, req.stack, trigger=req.trigger, reason=run.reason, run=run),
            ):
                commit = await self.deployer.async_commit(spec, req.revision)
                self.app.runs.update(run, details={"revision": commit.sha, "commit": commit.short})
                if req.kind == "dry_run":
                    await self.deployer.async_dry_run(req, spec, commit)
                elif req.kind == "rollback":
                    await self._async_manual_rollback(req, spec, commit)
                elif req.kind == "move":
                    await self.relocation.async_move(req, spec, commit)
                else:
                    await self._async_deploy(req, spec, commit)
        except DeployAborted as err:
            aborted = err
        except Exception:
            _LOGGER.debug("Stack %s: %s run %s failed", req.stack, req.kind, run.id, exc_info=True)
        if req.kind != "dry_run":
            self.states.get(req.stack).last_run_id = run.id
        if aborted is not None and aborted.touched:
            await self._async_auto_rollback(spec, run, aborted)

    @contextlib.asynccontextmanager
    async def _slot_in_window(self, spec: StackSpec, run: Run, window: MaintenanceWindow | None) -> AsyncIterator[None]:
        """One of `max_parallel` slots, taken while the stack's window (if any) is open; the run stays queued.

        The window is read again once the slot is ours: waiting behind other deploys can outlast it,
        and a deploy never starts after its window closed.
        """
        reason = run.reason
        while True:
            if window is not None and not window.is_open():
                self.app.runs.update(run, reason=f"{reason} (waiting for window {spec.window}: {window.describe()})")
                await window.async_wait_open()
            async with self._parallel:
                if window is None or window.is_open():
                    if run.reason != reason:
                        self.app.runs.update(run, reason=reason)
                    yield
                    return

    async def _async_deploy(self, req: DeployRequest, spec: StackSpec, commit: Commit) -> None:
        assert self.deployer is not None
        state = self.states.get(spec.name)
        if req.automatic and held_back(state, commit.sha, spec):
            info = state.bad[commit.sha]
            req.run.log(f"{commit.short} failed before (run #{info.get('run_id')}: {info.get('error')}); "
                        "it is not retried automatically — deploy it by hand or push a fix")
            await self.app.runs.finish(req.run, "skipped")
            return
        outcome = await self.deployer.async_deploy(req, spec, commit)
        if outcome == "skipped":
            self.app.runs.update(req.run, reason=f"{req.run.reason}; rendered output unchanged, nothing to do")
            await self.app.runs.finish(req.run, "skipped")

    async def _async_auto_rollback(self, spec: StackSpec, failed: Run, err: DeployAborted) -> None:
        assert self.deployer is not None
        state = self.states.get(spec.name)
        target = await self._good_snapshot(spec.name, exclude=err.revision)
        if not spec.rollback or target is None:
            failed.log("no rollback: " + ("rollback is off for this stack" if not spec.rollback
                                          else "there is no earlier good revision"))
            return
        reason = (f"deploy of {(err.revision or '?')[:7]} failed ({err.message}); "
                  f"restoring last good revision {target['revision'][:7]}")
        run = await self.app.runs.create("rollback", spec.name, trigger=failed.trigger, reason=reason,
                                         actor=failed.actor, details={"failed_run": failed.id})
        with _suppress_logged(spec.name):
            async with self.app.runs.track("rollback", spec.name, trigger=failed.trigger, reason=reason, run=run):
                await self.deployer.async_restore(run, spec, target, bad_revision=err.revision)
        state.last_run_id = run.id

    async def async_resume(self) -> None:
        """At start: a stack left running a bad revision (a crash cut its rollback short) is rolled back now.

        Stacks that left the config are taken down when `settings.on_remove` says so.
        """
        await self.orphans.async_startup()
        for name, spec in self.specs().items():
            state = self.states.get(name)
            current = state.deployed_revision
            if not (current and current in state.bad and state.health == "unhealthy" and spec.rollback):
                continue
            self.app.scheduler.submit(f"stack:{name}", functools.partial(self._async_resume_rollback, spec, current))

    async def _async_resume_rollback(self, spec: StackSpec, bad: str) -> None:
        assert self.deployer is not None
        target = await self._good_snapshot(spec.name, exclude=bad)
        if target is None:
            return
        reason = (f"Dockmaster stopped before the failed deploy of {bad[:7]} was rolled back; "
                  f"restoring last good revision {target['revision'][:7]}")
        run = await self.app.runs.create("rollback", spec.name, trigger="startup", reason=reason,
                                         details={"bad_revision": bad})
        with _suppress_logged(spec.name):
            async with self.app.runs.track("rollback", spec.name, trigger="startup", reason=reason, run=run):
                await self.deployer.async_restore(run, spec, target, bad_revision=bad)
        self.states.get(spec.name).last_run_id = run.id

    async def _async_manual_rollback(self, req: DeployRequest, spec: StackSpec, commit: Commit) -> None:
        assert self.deployer is not None
        state = self.states.get(spec.name)
        current = state.deployed_revision
        target = await self._good_snapshot(spec.name, revision=commit.sha if req.revision else None,
                                           exclude=None if req.revision else current)
        if current and current != (target or {}).get("revision", commit.sha):
            await self.states.async_mark_bad(state, current, inputs_hash=spec.inputs_hash, run_id=req.run.id,
                                             error=f"rolled back by {req.actor or req.trigger}")
            req.run.log(f"{current[:7]} is marked bad: it is not redeployed automatically")
        if target is not None:
            await self.deployer.async_restore(req.run, spec, target, bad_revision=current)
            return
        if not req.revision:
            raise Conflict(f"{spec.name} has no earlier good revision to roll back to")
        # No kept snapshot of that revision: render it again from git.
        req.run.log(f"no snapshot of {commit.short} is kept; rendering it from the repo")
        await self.deployer.async_deploy(req, spec, commit)

    async def _good_snapshot(self, name: str, *, revision: str | None = None,
                             exclude: str | None = None) -> dict[str, Any] | None:
        for row in await self.states.async_good_snapshots(name):
            if revision and row["revision"] != revision:
                continue
            if exclude and row["revision"] == exclude:
                continue
            # Snapshots made before working folders have no manifest: such a revision is rendered again.
            if await self.app.async_run_blocking(read_manifest, Path(row["snapshot"])) is not None:
                return row
        return None

    async def async_set_auto_deploy(self, name: str, value: bool) -> None:
        """Persist the UI toggle."""
        self.spec(name)
        state = self.states.get(name)
        state.auto_deploy = value
        await self.states.async_save(state)


class _suppress_logged:
    """Swallow an exception already recorded in a run (a failed rollback must not break the caller)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None and not issubclass(exc_type, asyncio.CancelledError):
            _LOGGER.warning("Stack %s: rollback failed: %s", self.name, exc)
            return True
        return False


def _digest_key(base: Path) -> bytes:
    """A random per-install key for digests of secrets (blocks on file I/O)."""
    path = base / ".digest-key"
    base.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_bytes()
    key = token.token_bytes(32)
    path.touch(mode=0o600)
    path.write_bytes(key)
    return key
