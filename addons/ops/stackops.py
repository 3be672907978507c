"""Stack-level work built on container labels: pull a stack's images and recreate it with Compose."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
from docker.auth import resolve_repository_name
from docker.utils import parse_repository_tag

from addons.stacks.contract import STACKS
from appliance.compose_cli import compose_command
from appliance.errors import NotFound, Unavailable
from appliance.subprocesses import async_spawn

from .containers import CONFIG_FILES_LABEL, PROJECT_LABEL, WORKING_DIR_LABEL, stack_containers
from .credentials import Credential, registry_key
from .engines import async_client

REVISION_LABEL = "io.dockmaster.revision"

if TYPE_CHECKING:
    from appliance.core import Appliance
    from appliance.runs import Run

_LOGGER = logging.getLogger(__name__)
# A stack the stacks addon deployed is recreated through its deploy service (secrets, labels, health gate).
DEPLOY_SERVICE = "stacks.deploy"


def stack_images(client: docker.DockerClient, stack: str) -> list[str]:
    """The distinct image references a stack's containers were created from; blocks."""
    containers = stack_containers(client, stack)
    if not containers:
        raise NotFound(f"no containers for stack {stack}")
    return sorted({c.attrs.get("Config", {}).get("Image", "") for c in containers} - {""})


def pull_images(client: docker.DockerClient, references: list[str],
                logins: dict[str, Credential] | None = None) -> list[dict[str, Any]]:
    """Pull each reference with its registry's login, if any (references pinned by digest are left alone); blocks."""
    results = []
    for ref in references:
        repo, tag = parse_repository_tag(ref)
        if tag and tag.startswith("sha256:"):
            results.append({"image": ref, "id": None, "pulled": False})
            continue
        registry, _ = resolve_repository_name(repo)
        login = (logins or {}).get(registry_key(registry))
        image = client.images.pull(repo, tag=tag or "latest", auth_config=login.auth_config() if login else None)
        results.append({"image": ref, "id": image.id, "pulled": True})
    return results


def stack_labels(client: docker.DockerClient, stack: str) -> dict[str, str]:
    """The labels of a stack's first container (compose's own and Dockmaster's); blocks."""
    containers = stack_containers(client, stack)
    if not containers:
        raise NotFound(f"no containers for stack {stack}")
    return dict(containers[0].attrs.get("Config", {}).get("Labels") or {})


def compose_project(labels: dict[str, str], stack: str) -> dict[str, Any]:
    """The compose project of a stack from compose's own labels; blocks (checks the files exist)."""
    project = labels.get(PROJECT_LABEL)
    working_dir = labels.get(WORKING_DIR_LABEL)
    files = [f for f in (labels.get(CONFIG_FILES_LABEL) or "").split(",") if f]
    if not project or not working_dir or not files:
        raise Unavailable(f"stack {stack} was not started by Compose (no project labels)")
    missing = [f for f in files if not Path(f).is_file()]
    if missing or not Path(working_dir).is_dir():
        raise Unavailable(f"the compose files of stack {stack} are gone: {', '.join(missing) or working_dir}")
    return {"project": project, "working_dir": working_dir, "files": files}


async def async_recreate(app: Appliance, stack: str, run: Run, *, reason: str) -> dict[str, Any]:
    """Recreate a stack's containers: through the stacks addon when it deployed them, else with Compose.

    Stacks deployed by the stacks addon carry `io.dockmaster.revision`; their secrets live only in that
    addon's deploy, so they are redeployed through its service at the running revision.
    """
    labels = await app.async_run_blocking(stack_labels, await async_client(app, stack=stack), stack)
    revision = labels.get(REVISION_LABEL)
    if revision and app.services.has(DEPLOY_SERVICE):
        run.log(f"redeploying {stack} at {revision[:12]} through the {DEPLOY_SERVICE} service")
        result = await app.services.async_call(DEPLOY_SERVICE, {"name": stack, "revision": revision, "wait": True},
                                               actor=run.actor or "ops", trigger="manual")
        # The service answers with its run id; that run's outcome is this recreate's outcome.
        other = await app.runs.get(result)
        status = other["status"] if other else "unknown"
        run.log(f"stacks run {result}: {status}")
        if status != "succeeded":
            raise RuntimeError(f"the stacks run {result} ended {status}")
        return {"via": DEPLOY_SERVICE, "result": result}
    project = await app.async_run_blocking(compose_project, labels, stack)
    compose = await app.async_run_blocking(compose_command)
    if not compose:
        raise Unavailable("Docker Compose v2 is not installed")
    argv = [*compose, "-p", project["project"], "--project-directory", project["working_dir"]]
    for file in project["files"]:
        argv += ["-f", file]
    argv += ["up", "-d", "--force-recreate", "--no-build", "--pull", "never"]
    run.log(f"compose -p {project['project']} up -d --force-recreate")
    await _async_exec(argv, run)
    return {"via": "compose", "project": project["project"]}


async def _async_exec(argv: list[str], run: Run) -> None:
    proc = await async_spawn(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    try:
        async for raw in proc.stdout:
            run.log(raw.decode("utf-8", "replace").rstrip())
        code = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if code != 0:
        raise RuntimeError(f"compose exited with status {code}")


def stack_window_name(app: Appliance, stack: str, default: str | None) -> str | None:
    """The maintenance window a stack is bound to (its own `window:`, discovered stacks too), else `default`."""
    stacks = app.data.get(STACKS)
    own = stacks.window_of(stack) if stacks is not None else None
    return own or default
