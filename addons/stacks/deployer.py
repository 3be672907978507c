"""One deploy, rollback or dry-run of a stack: export, render, decrypt, validate, up, health gate, record."""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from addons.repos.contract import REPOS, Commit
from appliance import hostpaths
from appliance.engines import LOCAL
from appliance.errors import DockmasterError, NotFound, Unavailable
from appliance.runs import Run

from . import dryrun, guard, mounts, secrets, swarmstage
from .compose import ComposeCall, ComposeRunner, write_labels_override
from .events import DeployFailed, DeployStarted, DeploySucceeded, RollbackFailed, RollbackSucceeded
from .health import HealthGate, list_project, projects_named
from .models import DeployRequest, StackSpec
from .placement import Placement
from .render import TEMPLATE_SUFFIX, Rendered, compose_files, render, render_hash
from .state import StackState, StateStore
from .workdir import Manifest, WorkingFolder, build_manifest, read_manifest, write_manifest

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)


class DeployAborted(DockmasterError):
    """A deploy failed; `touched` says whether containers were already changed (then a rollback is due)."""

    code = "deploy_failed"

    def __init__(self, message: str, *, revision: str | None, touched: bool, blames_revision: bool = True) -> None:
        """Keep the cause, the revision and whether the running stack was touched."""
        super().__init__(message)
        self.revision = revision
        self.touched = touched
        self.blames_revision = blames_revision


@dataclass
class Prepared:
    """A rendered stack folder at a revision, ready for compose."""

    revision: str
    short: str
    message: str
    rendered: Rendered
    manifest: Manifest


class Deployer:
    """Carries out deploy, restore (rollback) and dry-run work inside runs that the engine opened."""

    def __init__(self, app: Appliance, states: StateStore, compose: ComposeRunner, settings: dict[str, Any],
                 digest_key: bytes) -> None:
        """Bind the appliance, the state store, the compose runner and addon settings."""
        self.app = app
        self.states = states
        self.compose = compose
        self.compose.data_dir = app.data_dir  # registry logins for pulls (the only appliance state compose sees)
        self.settings = settings
        self.digest_key = digest_key
        self.root = app.data_dir / "stacks"
        self.tmp_prefix = secrets.dir_prefix(app.data_dir)
        self.gate = HealthGate(app.async_run_blocking)
        self.placement = Placement(app, self.root)
        self.interrupted = self.placement.interrupted

    # --- helpers ------------------------------------------------------------------------

    @property
    def key_file(self) -> Path | None:
        """The configured age key file (else SOPS_AGE_KEY_FILE from the environment is used)."""
        configured = self.settings.get("sops_age_key_file")
        return Path(configured) if configured else None

    def snapshots_dir(self, name: str) -> Path:
        """Where a stack's rendered snapshots live."""
        return self.root / name / "snapshots"

    def folder(self, name: str) -> WorkingFolder:
        """A stack's stable working folder (compose's project folder for everything it does)."""
        return WorkingFolder(self.root / name)

    async def async_commit(self, spec: StackSpec, revision: str | None) -> Commit:
        """The commit a deploy uses: the given revision or the repo's fetched head."""
        repos = self.app.data[REPOS]
        repo = repos.get(spec.repo)
        if not revision and (repo.head is None or self.app.oneshot):
            # Without the daemon nothing polls: fetch first so "deploy now" means what git holds now.
            result = await repos.async_sync(spec.repo, trigger="manual", reason=f"fetch before deploying {spec.name}")
            if result.error:
                raise Unavailable(f"cannot fetch repo {spec.repo}: {result.error}")
        rev = revision or repo.head
        if not rev:
            raise Unavailable(f"repo {spec.repo} has not been fetched yet")
        try:
            commit = await repo.async_commit(rev)
        except DockmasterError:
            raise
        except Exception as err:
            raise NotFound(f"revision {rev} is not in repo {spec.repo}: {err}") from None
        return commit

    async def async_prepare(self, spec: StackSpec, commit: Commit, dest: Path, run: Run) -> Prepared:
        """Export the stack folder at the commit into `dest` and render it."""
        repo = self.app.data[REPOS].get(spec.repo)
        run.log(f"exporting {spec.repo}:{spec.path} at {commit.short}")
        await repo.async_export(commit.sha, spec.path, dest)
        rendered = await self.app.async_run_blocking(render, dest, spec.values)
        if rendered.templates:
            run.log("rendered " + ", ".join(rendered.templates))
        manifest = await self.app.async_run_blocking(build_manifest, dest)
        await self.app.async_run_blocking(write_manifest, dest, manifest)
        return Prepared(commit.sha, commit.short, commit.subject, rendered, manifest)

    async def async_migrate(self, spec: StackSpec, state: StackState, run: Run) -> None:
        """Once, after an upgrade: carry the running snapshot's untracked files (`./data`) into the working folder."""
        folder = self.folder(spec.name)
        legacy = Path(state.snapshot) if state.snapshot else None
        if legacy is None or not state.deployed_revision or await self.app.async_run_blocking(folder.root.exists):
            return
        if not await self.app.async_run_blocking(legacy.is_dir) or \
                await self.app.async_run_blocking(read_manifest, legacy) is not None:
            return
        tracked = await self._async_tracked_names(spec, state.deployed_revision, legacy)
        moved = await self.app.async_run_blocking(folder.adopt_legacy, legacy, tracked)
        if moved:
            run.log(f"moved {len(moved)} untracked item(s) of the running deploy ({', '.join(moved[:5])}"
                    f"{', ...' if len(moved) > 5 else ''}) from {legacy} into the stack's working folder "
                    f"{folder.root}; they stay there across deploys and rollbacks")
        else:
            run.log(f"the stack now deploys from its working folder {folder.root}")

    async def _async_tracked_names(self, spec: StackSpec, revision: str, legacy: Path) -> set[str]:
        """The rendered file names of a stack folder at a revision (from git; else the compose files)."""
        repo = self.app.data[REPOS].get(spec.repo)
        scratch = Path(await self.app.async_run_blocking(
            functools.partial(tempfile.mkdtemp, prefix=".export-", dir=str(self.root))))
        try:
            await repo.async_export(revision, spec.path, scratch / "tree")
            names = await self.app.async_run_blocking(build_manifest, scratch / "tree")
            return {rel.removesuffix(TEMPLATE_SUFFIX) for rel in names}
        except Exception as err:  # a revision gone from git: only the compose files count as tracked
            _LOGGER.warning("Stack %s: cannot list the files of %s (%s)", spec.name, revision[:7], err)
            return set(await self.app.async_run_blocking(compose_files, legacy))
        finally:
            await self.app.async_run_blocking(shutil.rmtree, scratch, True)

    async def async_project(self, spec: StackSpec, state: StackState, run: Run, client: Any) -> str:
        """The compose project name; a project already running as `dm-<stack>` or `<stack>` is taken over
        when Dockmaster made it, or when the stack says `adopt: true`; otherwise the deploy is refused."""
        if state.project:
            return state.project
        default = f"dm-{spec.name}"
        found = await self.app.async_run_blocking(projects_named, client, [default, spec.name])
        for project in (default, spec.name):
            if project not in found:
                continue
            count, ours = found[project]
            if not (ours or spec.adopt):
                raise DeployAborted(
                    f"a compose project named '{project}' that Dockmaster did not start already runs {count} "
                    "container(s); set 'adopt: true' on the stack to take it over (its containers are recreated "
                    "from git), or give the stack another name", revision=None, touched=False, blames_revision=False)
            run.log(f"adopting the compose project '{project}' ({count} container(s)"
                    f"{'' if ours else ', started outside Dockmaster'}); it keeps its project name so nothing "
                    "is duplicated")
            return project
        return default

    def env_for(self, spec: StackSpec, decrypted: secrets.DecryptedSecrets) -> dict[str, str]:
        """The variables a compose call of the stack gets: its `env`, then its decrypted SOPS values."""
        env = {**spec.env, **decrypted.env}
        if decrypted.directory is not None:
            env["DOCKMASTER_SECRETS_DIR"] = str(decrypted.directory)
        return env

    async def _async_stage(self, spec: StackSpec, state: StackState, run: Run, *, snapshot: Path,
                           manifest: Manifest, revision: str, decrypted: secrets.DecryptedSecrets,
                           engine: str) -> tuple[ComposeCall, list[str]]:
        """Write a revision into the working folder and settle what compose runs; touches no container."""
        folder = self.folder(spec.name)
        client = await self.placement.async_client(engine)
        report = await self.app.async_run_blocking(folder.sync, snapshot, manifest)
        run.log(f"working folder {folder.root}: {report.describe()}")
        project = await self.async_project(spec, state, run, client)
        files = await self.app.async_run_blocking(compose_files, snapshot)
        link = self.app.engines.get(engine)
        call = ComposeCall(project, folder.root, list(files), self.env_for(spec, decrypted),
                           engine=link.environment() if link.files is not None else None)
        call.engine_name = engine
        # Paths and policy are checked before compose reads an outside file and before any container changes.
        await guard.async_enforce_sources(self, spec, call, run, revision=revision)
        run.log(f"compose config: validating {', '.join(call.files)}")
        model = await self.compose.async_config(call, log=run.log)
        services = sorted(model.get("services", {}))
        if not services:
            raise DeployAborted("the compose file defines no services", revision=revision, touched=False)
        await guard.async_enforce_model(self, spec, call, model, run, revision=revision)
        host = await self.placement.async_host_paths(engine)
        plan = await self.async_mount_plan(call, model, decrypted, run, host=host)
        # Only a revision that passed every check reaches a remote engine's host.
        await self.placement.async_deliver(spec.name, engine, manifest, report.removed, run)
        if spec.mode == "swarm":
            await self.app.async_run_blocking(swarmstage.require_manager, client, engine)
            call.swarm = await self.app.async_run_blocking(functools.partial(
                swarmstage.prepare, plan.apply(model), env=call.env, decrypted=decrypted.files, root=folder.root,
                stack=spec.name, revision=revision))
            return call, services
        override = folder.generated(mounts.OVERRIDE_FILE)
        if plan.services:
            await self.app.async_run_blocking(mounts.write_override, override, plan)
            call.files.append(mounts.OVERRIDE_FILE)
        else:
            await self.app.async_run_blocking(functools.partial(override.unlink, missing_ok=True))
        call.files.append(await self.app.async_run_blocking(
            functools.partial(write_labels_override, folder.root, services, stack=spec.name, revision=revision)))
        return call, services

    async def async_mount_plan(self, call: ComposeCall, model: dict[str, Any], decrypted: secrets.DecryptedSecrets,
                               run: Run, *, host: hostpaths.HostPaths | None = None) -> mounts.MountPlan:
        """Bind sources as the Docker host knows them and SOPS env files read from tmpfs (logged)."""
        env_files = None
        if decrypted.files or mounts.reads_sops(model):
            # Only then is the second `compose config` worth its cost: which env_file names which file.
            env_files = await self.compose.async_env_files(call)
        plan = await self.app.async_run_blocking(functools.partial(
            mounts.plan, model, root=call.root, host=host or await self.placement.async_host_paths(),
            decrypted=decrypted.files, env_files=env_files))
        for note in plan.notes:
            run.log(note)
        return plan

    async def _async_unstage(self, spec: StackSpec, state: StackState, run: Run) -> None:
        """Put the running revision's files back into the working folder after a deploy failed early."""
        running = Path(state.snapshot) if state.snapshot else None
        manifest = await self.app.async_run_blocking(read_manifest, running) if running else {}
        if manifest is None or not await self.app.async_run_blocking(self.folder(spec.name).root.is_dir):
            return
        try:
            await self.app.async_run_blocking(self.folder(spec.name).sync, running or self.root, manifest)
        except Exception as err:  # the deploy already failed; say why the files stayed
            run.log(f"could not put the running revision's files back into the working folder: {err}")
        else:
            run.log("the working folder holds the running revision's files again")

    async def _async_up_and_gate(self, spec: StackSpec, call: ComposeCall, services: list[str], run: Run) -> None:
        where = f" on engine {call.engine_name}" if call.engine_name != LOCAL else ""
        if call.swarm is not None:
            run.log(f"swarm stack {call.project}{where}: waiting up to {spec.health_timeout:g}s for every service "
                    "to converge")
            client = await self.placement.async_client(call.engine_name)
            problem = await swarmstage.async_deploy(self.app, client, call.project, call.swarm,
                                                    timeout=spec.health_timeout, run=run)
            if problem:
                raise DeployAborted(problem, revision=None, touched=True)
            return
        run.log(f"compose up ({call.project}{where}, pull {spec.pull})")
        await self.compose.async_up(call, pull=spec.pull, log=run.log)
        run.log(f"health gate: waiting up to {spec.health_timeout:g}s for {', '.join(services)}")
        client = await self.placement.async_client(call.engine_name)
        problem = await self.gate.async_wait(client, call.project, services, spec.health_timeout, run.log)
        if problem:
            raise DeployAborted(problem, revision=None, touched=True)

    async def _async_record_good(self, spec: StackSpec, state: StackState, *, call: ComposeCall, revision: str,
                                 services: list[str], snapshot: Path, rhash: str | None) -> None:
        project = call.project
        client = await self.placement.async_client(call.engine_name)
        views = [] if call.swarm is not None else await self.app.async_run_blocking(list_project, client, project)
        state.engine = call.engine_name
        state.mode = spec.mode
        self.interrupted.pop(spec.name, None)
        state.config_hashes = {v.service: v.config_hash or "" for v in views if v.service in services}
        state.project = project
        state.deployed_revision = state.good_revision = revision
        if rhash is not None:
            state.render_hash = rhash
            state.inputs_hash = spec.inputs_hash
        state.snapshot = str(snapshot)
        state.health = "healthy"
        state.drift = None
        state.desired = "running"
        await self.states.async_save(state)

    # --- deploy -------------------------------------------------------------------------

    async def async_deploy(self, req: DeployRequest, spec: StackSpec, commit: Commit, *, moving: bool = False) -> str:
        """Deploy `commit`; returns "succeeded" or "skipped"; raises DeployAborted on failure."""
        run = req.run
        state = self.states.get(spec.name)
        sha, short = commit.sha, commit.short
        self.app.bus.async_fire(DeployStarted(stack=spec.name, revision=sha, reason=run.reason, run_id=run.id))
        snapshot = self.snapshots_dir(spec.name) / f"{run.id}-{short}"
        touched = staged = keep_snapshot = False
        engine = spec.engine
        try:
            engine = self.placement.engine_for(spec, state, moving=moving)
            await self.app.async_run_blocking(_fresh_dir, snapshot)
            prepared = await self.async_prepare(spec, commit, snapshot, run)
            await self.async_migrate(spec, state, run)
            async with secrets.async_decrypted(snapshot, spec.sops, key_file=self.key_file,
                                               digest_key=self.digest_key, on_value=run.secrets.add,
                                               prefix=self.tmp_prefix) as decrypted:
                if decrypted.env:
                    run.log(f"decrypted {len(decrypted.env)} secret value(s) from {', '.join(spec.sops)} to tmpfs")
                rhash = render_hash(prepared.rendered.tree_hash, spec.inputs_hash, decrypted.digest)
                unchanged = rhash == state.render_hash and state.health == "healthy" and state.engine in (None, engine)
                if req.automatic and state.deployed_revision and unchanged and not moving:
                    run.log("the rendered output, values and secrets equal the running deploy; nothing to do")
                    state.deployed_revision = sha
                    await self.states.async_save(state)
                    return "skipped"
                staged = True
                call, services = await self._async_stage(spec, state, run, snapshot=snapshot,
                                                         manifest=prepared.manifest, revision=sha, decrypted=decrypted,
                                                         engine=engine)
                touched = True
                await self._async_up_and_gate(spec, call, services, run)
            await self._async_record_good(spec, state, call=call, revision=sha, services=services,
                                          snapshot=snapshot, rhash=rhash)
            keep_snapshot = True
            # Healthy now: a bad mark (a manual deploy, or new inputs such as an added value) is void.
            await self.states.async_clear_bad(state, sha)
            await self.states.async_add_history(spec.name, sha, run_id=run.id, kind=req.kind, outcome="good",
                                                reason=run.reason, message=prepared.message, snapshot=str(snapshot))
            await self.async_prune(spec.name, state)
            run.log(f"{spec.name} is healthy at {short}")
            self.app.bus.async_fire(DeploySucceeded(stack=spec.name, revision=sha, reason=run.reason, run_id=run.id))
            return "succeeded"
        except asyncio.CancelledError:
            raise
        except Exception as err:
            cause = str(err) or type(err).__name__
            if engine != LOCAL and await self.placement.async_engine_down(engine, err):
                if staged and not touched:
                    await self._async_unstage(spec, state, run)
                self.placement.engine_lost(state, run, engine, cause, revision=sha)
                raise DeployAborted(cause, revision=sha, touched=False, blames_revision=False) from err
            if touched:
                state.health = "unhealthy"
                state.deployed_revision = sha
                if not (spec.rollback and state.good_revision):
                    # Nothing to go back to: the working folder holds this revision, so its snapshot stays.
                    state.snapshot = str(snapshot)
                    keep_snapshot = True
                await self.states.async_save(state)
            else:
                if staged:
                    await self._async_unstage(spec, state, run)
                run.log("the running stack was not touched")
            if getattr(err, "blames_revision", True):
                await self.states.async_mark_bad(state, sha, inputs_hash=spec.inputs_hash, run_id=run.id,
                                                 error=run.secrets(cause))
            else:
                run.log("the cause lies outside the revision: it is tried again at the next trigger")
            await self.states.async_add_history(spec.name, sha, run_id=run.id, kind=req.kind, outcome="bad",
                                                reason=run.reason, message=commit.subject)
            self.app.bus.async_fire(DeployFailed(stack=spec.name, revision=sha, error=run.secrets(cause),
                                                 run_id=run.id))
            raise DeployAborted(cause, revision=sha, touched=touched) from err
        finally:
            if not keep_snapshot:
                await self.app.async_run_blocking(shutil.rmtree, snapshot, True)

    # --- restore (rollback) ---------------------------------------------------------------

    async def async_restore(self, run: Run, spec: StackSpec, target: dict[str, Any], *,
                            bad_revision: str | None) -> None:
        """Bring back a good revision from its kept snapshot (secrets are decrypted again)."""
        state = self.states.get(spec.name)
        revision = target["revision"]
        snapshot = Path(target["snapshot"])
        self.app.runs.update(run, details={"revision": revision, "bad_revision": bad_revision})
        staged = False
        try:
            manifest = await self.app.async_run_blocking(read_manifest, snapshot)
            if manifest is None:
                raise DeployAborted(f"the snapshot of {revision[:7]} is gone", revision=revision, touched=False)
            await self.async_migrate(spec, state, run)
            async with secrets.async_decrypted(snapshot, spec.sops, key_file=self.key_file,
                                               digest_key=self.digest_key, on_value=run.secrets.add,
                                               prefix=self.tmp_prefix) as decrypted:
                staged = True
                call, services = await self._async_stage(spec, state, run, snapshot=snapshot, manifest=manifest,
                                                         revision=revision, decrypted=decrypted,
                                                         engine=state.engine or spec.engine)
                staged = False  # from here on the containers change: the folder must match them
                await self._async_up_and_gate(spec, call, services, run)
            await self._async_record_good(spec, state, call=call, revision=revision, services=services,
                                          snapshot=snapshot, rhash=None)
            state.render_hash = None  # re-rendered and compared at the next automatic deploy
            await self.states.async_save(state)
            await self.states.async_add_history(spec.name, revision, run_id=run.id, kind="rollback", outcome="good",
                                                reason=run.reason, message=target.get("message") or "",
                                                snapshot=str(snapshot))
            run.log(f"{spec.name} is healthy again at {revision[:7]}")
            self.app.bus.async_fire(RollbackSucceeded(stack=spec.name, revision=revision,
                                                      bad_revision=bad_revision, run_id=run.id))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if staged:
                await self._async_unstage(spec, state, run)
            cause = run.secrets(str(err) or type(err).__name__)
            engine = state.engine or spec.engine
            if engine != LOCAL and await self.placement.async_engine_down(engine, err):
                self.placement.engine_lost(state, run, engine, cause, revision=None)
                await self.states.async_save(state)
                raise
            state.health = "failed"
            await self.states.async_save(state)
            await self.states.async_add_history(spec.name, revision, run_id=run.id, kind="rollback",
                                                outcome="failed", reason=run.reason)
            self.app.bus.async_fire(RollbackFailed(stack=spec.name, revision=revision, error=cause, run_id=run.id))
            raise

    async def async_prune(self, name: str, state: StackState) -> None:
        """Keep the newest `keep_snapshots` good snapshots plus the running one; delete the rest.

        A snapshot holds only a revision's rendered tracked files; what containers write lives in the
        working folder, which pruning never touches.
        """
        rows = await self.states.async_good_snapshots(name)
        keep = {row["snapshot"] for row in rows[: self.settings["keep_snapshots"]]}
        if state.snapshot:
            keep.add(state.snapshot)
        for row in rows:
            if row["snapshot"] not in keep:
                await self.states.async_forget_snapshot(row["snapshot"])
        base = self.snapshots_dir(name)
        active = {str(base / p) for p in _names(base)} - keep
        for path in active:
            # A folder of a run still in progress is not in history yet; only prune finished ones.
            run_id = int(Path(path).name.split("-")[0]) if Path(path).name.split("-")[0].isdigit() else 0
            if run_id and run_id in self.app.runs.active:
                continue
            if await self.app.async_run_blocking(read_manifest, Path(path)) is None:
                # Made before working folders: it may hold data a container wrote, which is never deleted.
                continue
            await self.app.async_run_blocking(shutil.rmtree, path, True)

    async def async_dry_run(self, req: DeployRequest, spec: StackSpec, commit: Commit) -> None:
        """Render and decrypt on tmpfs, diff against the running snapshot, validate; change nothing."""
        await dryrun.async_dry_run(self, req, spec, commit)


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def _names(base: Path) -> list[str]:
    return [p.name for p in base.iterdir()] if base.is_dir() else []
