"""One deploy, rollback or dry-run of a stack: export, render, decrypt, validate, up, health gate, record."""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import DockmasterError, NotFound, Unavailable
from appliance.events import DeployFailed, DeployStarted, DeploySucceeded, RollbackFailed, RollbackSucceeded
from appliance.runs import Run

from . import secrets
from .compose import LABELS_FILE, ComposeCall, ComposeRunner, redacted_config, write_labels_override
from .health import HealthGate, list_project, projects_named
from .models import DeployRequest, StackSpec
from .render import GENERATED_PREFIX, Rendered, compose_files, render, render_hash
from .state import StackState, StateStore

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
DIFF_CAP = 200_000


class DeployAborted(DockmasterError):
    """A deploy failed; `touched` says whether containers were already changed (then a rollback is due)."""

    code = "deploy_failed"

    def __init__(self, message: str, *, revision: str | None, touched: bool) -> None:
        """Keep the cause, the revision and whether the running stack was touched."""
        super().__init__(message)
        self.revision = revision
        self.touched = touched


@dataclass
class Prepared:
    """A rendered stack folder at a revision, ready for compose."""

    revision: str
    short: str
    message: str
    rendered: Rendered


class Deployer:
    """Carries out deploy, restore (rollback) and dry-run work inside runs that the engine opened."""

    def __init__(self, app: Appliance, states: StateStore, compose: ComposeRunner, settings: dict[str, Any],
                 digest_key: bytes) -> None:
        """Bind the appliance, the state store, the compose runner and addon settings."""
        self.app = app
        self.states = states
        self.compose = compose
        self.settings = settings
        self.digest_key = digest_key
        self.root = app.data_dir / "stacks"
        self.tmp_prefix = secrets.dir_prefix(app.data_dir)
        self.gate = HealthGate(app.async_run_blocking, app.docker)

    # --- helpers ------------------------------------------------------------------------

    @property
    def key_file(self) -> Path | None:
        """The configured age key file (else SOPS_AGE_KEY_FILE from the environment is used)."""
        configured = self.settings.get("sops_age_key_file")
        return Path(configured) if configured else None

    def snapshots_dir(self, name: str) -> Path:
        """Where a stack's rendered snapshots live."""
        return self.root / name / "snapshots"

    async def async_commit(self, spec: StackSpec, revision: str | None) -> dict[str, Any]:
        """The commit a deploy uses: the given revision or the repo's fetched head."""
        repos = self.app.data["repos"]
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
            commit: dict[str, Any] = await repo.async_commit(rev)
        except DockmasterError:
            raise
        except Exception as err:
            raise NotFound(f"revision {rev} is not in repo {spec.repo}: {err}") from None
        return commit

    async def async_prepare(self, spec: StackSpec, commit: dict[str, Any], dest: Path, run: Run) -> Prepared:
        """Export the stack folder at the commit into `dest` and render it."""
        repo = self.app.data["repos"].get(spec.repo)
        run.log(f"exporting {spec.repo}:{spec.path} at {commit['short']}")
        await repo.async_export(commit["sha"], spec.path, dest)
        rendered = await self.app.async_run_blocking(render, dest, spec.values)
        if rendered.templates:
            run.log("rendered " + ", ".join(rendered.templates))
        message = (commit.get("message") or "").strip().splitlines()
        return Prepared(commit["sha"], commit["short"], message[0] if message else "", rendered)

    async def async_project(self, spec: StackSpec, state: StackState, run: Run) -> str:
        """The compose project name; adopts a project already running as `dm-<stack>` or `<stack>`."""
        if state.project:
            return state.project
        default = f"dm-{spec.name}"
        found = await self.app.async_run_blocking(projects_named, self.app.docker(), [default, spec.name])
        if default in found:
            run.log(f"adopting the running compose project {default} ({found[default]} container(s))")
            return default
        if spec.name in found:
            run.log(f"adopting the compose project '{spec.name}' started outside Dockmaster "
                    f"({found[spec.name]} container(s)); it keeps its project name so nothing is duplicated")
            return spec.name
        return default

    def _env(self, spec: StackSpec, decrypted: secrets.DecryptedSecrets) -> dict[str, str]:
        env = {**spec.env, **decrypted.env}
        if decrypted.directory is not None:
            env["DOCKMASTER_SECRETS_DIR"] = str(decrypted.directory)
        return env

    async def _async_up_and_gate(self, spec: StackSpec, call: ComposeCall, services: list[str], run: Run) -> None:
        run.log(f"compose up ({call.project}, pull {spec.pull})")
        await self.compose.async_up(call, pull=spec.pull, log=run.log)
        run.log(f"health gate: waiting up to {spec.health_timeout:g}s for {', '.join(services)}")
        problem = await self.gate.async_wait(call.project, services, spec.health_timeout, run.log)
        if problem:
            raise DeployAborted(problem, revision=None, touched=True)

    async def _async_record_good(self, spec: StackSpec, state: StackState, *, project: str, revision: str,
                                 services: list[str], snapshot: Path, rhash: str | None) -> None:
        views = await self.app.async_run_blocking(list_project, self.app.docker(), project)
        state.config_hashes = {v.service: v.config_hash or "" for v in views if v.service in services}
        state.project = project
        state.deployed_revision = state.good_revision = revision
        if rhash is not None:
            state.render_hash = rhash
            state.inputs_hash = spec.inputs_hash
        state.snapshot = str(snapshot)
        state.health = "healthy"
        state.drift = None
        await self.states.async_save(state)

    # --- deploy -------------------------------------------------------------------------

    async def async_deploy(self, req: DeployRequest, spec: StackSpec, commit: dict[str, Any]) -> str:
        """Deploy `commit`; returns "succeeded" or "skipped"; raises DeployAborted on failure."""
        run = req.run
        state = self.states.get(spec.name)
        sha, short = commit["sha"], commit["short"]
        self.app.bus.async_fire(DeployStarted(stack=spec.name, revision=sha, reason=run.reason, run_id=run.id))
        workdir = self.snapshots_dir(spec.name) / f"{run.id}-{short}"
        touched = False
        keep_workdir = False
        try:
            await self.app.async_run_blocking(_fresh_dir, workdir)
            prepared = await self.async_prepare(spec, commit, workdir, run)
            async with secrets.async_decrypted(workdir, spec.sops, key_file=self.key_file,
                                               digest_key=self.digest_key, on_value=run.secrets.add,
                                               prefix=self.tmp_prefix) as decrypted:
                if decrypted.env:
                    run.log(f"decrypted {len(decrypted.env)} secret value(s) from {', '.join(spec.sops)} to tmpfs")
                rhash = render_hash(prepared.rendered.tree_hash, spec.inputs_hash, decrypted.digest)
                unchanged = rhash == state.render_hash and state.health == "healthy"
                if req.automatic and state.deployed_revision and unchanged:
                    run.log("the rendered output, values and secrets equal the running deploy; nothing to do")
                    state.deployed_revision = sha
                    await self.states.async_save(state)
                    return "skipped"
                project = await self.async_project(spec, state, run)
                call = ComposeCall(project, workdir, list(prepared.rendered.compose_files), self._env(spec, decrypted))
                run.log(f"compose config: validating {', '.join(call.files)}")
                model = await self.compose.async_config(call, log=run.log)
                services = sorted(model.get("services", {}))
                if not services:
                    raise DeployAborted("the compose file defines no services", revision=sha, touched=False)
                call.files.append(write_labels_override(workdir, services, stack=spec.name, revision=sha))
                touched = True
                await self._async_up_and_gate(spec, call, services, run)
            await self._async_record_good(spec, state, project=project, revision=sha, services=services,
                                          snapshot=workdir, rhash=rhash)
            keep_workdir = True
            # Healthy now: a bad mark (a manual deploy, or new inputs such as an added value) is void.
            await self.states.async_clear_bad(state, sha)
            await self.states.async_add_history(spec.name, sha, run_id=run.id, kind=req.kind, outcome="good",
                                                reason=run.reason, message=prepared.message, snapshot=str(workdir))
            await self.async_prune(spec.name, state)
            run.log(f"{spec.name} is healthy at {short}")
            self.app.bus.async_fire(DeploySucceeded(stack=spec.name, revision=sha, reason=run.reason, run_id=run.id))
            return "succeeded"
        except asyncio.CancelledError:
            raise
        except Exception as err:
            cause = str(err) or type(err).__name__
            if touched:
                state.health = "unhealthy"
                state.deployed_revision = sha
                if not (spec.rollback and state.good_revision):
                    # Nothing to go back to: the containers now run from this folder, so it stays.
                    state.snapshot = str(workdir)
                    keep_workdir = True
                await self.states.async_save(state)
            else:
                run.log("the running stack was not touched")
            await self.states.async_mark_bad(state, sha, inputs_hash=spec.inputs_hash, run_id=run.id,
                                             error=run.secrets(cause))
            await self.states.async_add_history(spec.name, sha, run_id=run.id, kind=req.kind, outcome="bad",
                                                reason=run.reason, message=commit.get("message", "").split("\n")[0])
            self.app.bus.async_fire(DeployFailed(stack=spec.name, revision=sha, error=run.secrets(cause),
                                                 run_id=run.id))
            raise DeployAborted(cause, revision=sha, touched=touched) from err
        finally:
            if not keep_workdir:
                await self.app.async_run_blocking(shutil.rmtree, workdir, True)

    # --- restore (rollback) ---------------------------------------------------------------

    async def async_restore(self, run: Run, spec: StackSpec, target: dict[str, Any], *,
                            bad_revision: str | None) -> None:
        """Bring back a good revision from its kept snapshot (secrets are decrypted again)."""
        state = self.states.get(spec.name)
        revision = target["revision"]
        snapshot = Path(target["snapshot"])
        self.app.runs.update(run, details={"revision": revision, "bad_revision": bad_revision})
        try:
            if not await self.app.async_run_blocking(snapshot.is_dir):
                raise DeployAborted(f"the snapshot of {revision[:7]} is gone", revision=revision, touched=False)
            project = state.project or f"dm-{spec.name}"
            files = [*compose_files(snapshot), LABELS_FILE]
            async with secrets.async_decrypted(snapshot, spec.sops, key_file=self.key_file,
                                               digest_key=self.digest_key, on_value=run.secrets.add,
                                               prefix=self.tmp_prefix) as decrypted:
                call = ComposeCall(project, snapshot, files, self._env(spec, decrypted))
                model = await self.compose.async_config(call, log=run.log)
                services = sorted(name for name in model.get("services", {}))
                await self._async_up_and_gate(spec, call, services, run)
            await self._async_record_good(spec, state, project=project, revision=revision, services=services,
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
            cause = run.secrets(str(err) or type(err).__name__)
            state.health = "failed"
            await self.states.async_save(state)
            await self.states.async_add_history(spec.name, revision, run_id=run.id, kind="rollback",
                                                outcome="failed", reason=run.reason)
            self.app.bus.async_fire(RollbackFailed(stack=spec.name, revision=revision, error=cause, run_id=run.id))
            raise

    async def async_prune(self, name: str, state: StackState) -> None:
        """Keep the newest `keep_snapshots` good snapshots plus the running one; delete the rest."""
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
            await self.app.async_run_blocking(shutil.rmtree, path, True)

    # --- dry run ------------------------------------------------------------------------

    async def async_dry_run(self, req: DeployRequest, spec: StackSpec, commit: dict[str, Any]) -> None:
        """Render and decrypt on tmpfs, diff against the running snapshot, validate; change nothing."""
        run = req.run
        state = self.states.get(spec.name)
        base = secrets.tmpfs_base()
        scratch = Path(await self.app.async_run_blocking(
            lambda: tempfile.mkdtemp(prefix=self.tmp_prefix, dir=str(base) if base else None)))
        try:
            prepared = await self.async_prepare(spec, commit, scratch / "stack", run)
            current = Path(state.snapshot) if state.snapshot else None
            diff, changed = await self.app.async_run_blocking(unified_diff, current, scratch / "stack")
            run.log(f"{len(changed)} file(s) differ from the running deploy" if current else "nothing deployed yet")
            async with secrets.async_decrypted(scratch / "stack", spec.sops, key_file=self.key_file,
                                               digest_key=self.digest_key, on_value=run.secrets.add,
                                               prefix=self.tmp_prefix) as decrypted:
                project = await self.async_project(spec, state, run)
                call = ComposeCall(project, scratch / "stack", list(prepared.rendered.compose_files),
                                   self._env(spec, decrypted))
                model = await self.compose.async_config(call, log=run.log)
                config_text = redacted_config(model, lambda text: self.app.redactor(run.secrets(text)))
            run.log("compose config: valid")
            self.app.runs.update(run, details={
                "dry_run": True, "revision": prepared.revision, "changed_files": changed,
                "diff": self.app.redactor(run.secrets(diff))[:DIFF_CAP], "compose_config": config_text[:DIFF_CAP],
            })
            state.last_dry_run_id = run.id
            await self.states.async_save(state)
        finally:
            await self.app.async_run_blocking(shutil.rmtree, scratch, True)


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def _names(base: Path) -> list[str]:
    return [p.name for p in base.iterdir()] if base.is_dir() else []


def _files(root: Path | None) -> dict[str, Path]:
    if root is None or not root.is_dir():
        return {}
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if not rel.startswith(GENERATED_PREFIX):
                out[rel] = path
    return out


def unified_diff(old_root: Path | None, new_root: Path) -> tuple[str, list[str]]:
    """A unified diff of two rendered trees and the list of changed files (blocks on file I/O)."""
    old, new = _files(old_root), _files(new_root)
    chunks: list[str] = []
    changed: list[str] = []
    for rel in sorted(set(old) | set(new)):
        a = _read_lines(old.get(rel))
        b = _read_lines(new.get(rel))
        if a == b:
            continue
        changed.append(rel)
        chunks.extend(difflib.unified_diff(a, b, f"running/{rel}" if rel in old else "/dev/null",
                                           f"new/{rel}" if rel in new else "/dev/null"))
    return "".join(chunks), changed


def _read_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return [f"<binary file, {len(data)} bytes>\n"]
    return data.decode(errors="replace").splitlines(keepends=True)
