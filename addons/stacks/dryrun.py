"""Dry runs: render and validate a revision on tmpfs and diff it against the running snapshot; change nothing."""

from __future__ import annotations

import difflib
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from addons.repos.contract import Commit
from appliance.hostpaths import HostPaths

from . import guard, secrets
from .compose import ComposeCall, redacted_config
from .models import DeployRequest, StackSpec
from .render import GENERATED_PREFIX
from .workdir import read_manifest

if TYPE_CHECKING:
    from appliance.runs import Run

    from .deployer import Deployer
    from .state import StackState

DIFF_CAP = 200_000


async def async_dry_run(deployer: Deployer, req: DeployRequest, spec: StackSpec, commit: Commit) -> None:
    """Render and decrypt on tmpfs, diff against the running snapshot, validate; change nothing.

    The resolved config shows the paths compose would use: bind sources in the stack's working
    folder as the Docker host sees it, and SOPS env files read from their decrypted copies.
    """
    app = deployer.app
    run = req.run
    state = deployer.states.get(spec.name)
    base = secrets.tmpfs_base()
    scratch = Path(await app.async_run_blocking(functools.partial(
        tempfile.mkdtemp, prefix=deployer.tmp_prefix, dir=str(base) if base else None)))
    tree = scratch / "stack"
    try:
        prepared = await deployer.async_prepare(spec, commit, tree, run)
        current = Path(state.snapshot) if state.snapshot else None
        diff, changed = await app.async_run_blocking(unified_diff, current, tree)
        run.log(f"{len(changed)} file(s) differ from the running deploy" if current else "nothing deployed yet")
        async with secrets.async_decrypted(tree, spec.sops, key_file=deployer.key_file,
                                           digest_key=deployer.digest_key, on_value=run.secrets.add,
                                           prefix=deployer.tmp_prefix) as decrypted:
            engine = deployer.placement.engine_for(spec, state)
            project = await deployer.async_project(spec, state, run, await deployer.placement.async_client(engine))
            call = ComposeCall(project, tree, list(prepared.rendered.compose_files), deployer.env_for(spec, decrypted))
            outside = await guard.async_source_violations(deployer, call)
            if outside:  # compose would read those files: it does not run
                await _async_record(deployer, run, state, prepared.revision, changed, diff, "")
                raise guard.refuse(deployer, spec, run, outside, revision=prepared.revision, dry_run=True)
            model = await deployer.compose.async_config(call, log=run.log)
            violations = await guard.async_model_violations(deployer, spec, call, model, run)
            # The files sit on tmpfs here; map them as if they were in the working folder.
            host = await deployer.placement.async_host_paths(engine)
            work = host.to_host(str(deployer.folder(spec.name).root))
            as_work = HostPaths(tree, Path(work) if work else None, host.how)
            plan = await deployer.async_mount_plan(call, model, decrypted, run, host=as_work)
            config_text = redacted_config(plan.apply(model), lambda text: app.redactor(run.secrets(text)))
        run.log("compose config: valid")
        await _async_record(deployer, run, state, prepared.revision, changed, diff, config_text)
        if violations:
            raise guard.refuse(deployer, spec, run, violations, revision=prepared.revision, dry_run=True)
    finally:
        await app.async_run_blocking(shutil.rmtree, scratch, True)


async def _async_record(deployer: Deployer, run: Run, state: StackState, revision: str, changed: list[str],
                        diff: str, config_text: str) -> None:
    """Keep the dry-run's diff and resolved config on its run; the stack page shows the latest."""
    app = deployer.app
    app.runs.update(run, details={
        "dry_run": True, "revision": revision, "changed_files": changed,
        "diff": app.redactor(run.secrets(diff))[:DIFF_CAP], "compose_config": config_text[:DIFF_CAP],
    })
    state.last_dry_run_id = run.id
    await deployer.states.async_save(state)


def _files(root: Path | None) -> dict[str, Path]:
    """The tracked files of a snapshot (its manifest when it has one; else every file but Dockmaster's)."""
    if root is None or not root.is_dir():
        return {}
    manifest = read_manifest(root)
    if manifest is not None:
        return {rel: root / rel for rel in manifest}
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
