"""Stack-level work built on container labels: pull a stack's images and recreate it with Compose."""

from __future__ import annotations

import asyncio
import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
from docker.utils import parse_repository_tag

from appliance.compose_cli import compose_command
from appliance.errors import NotFound, Unavailable

from .containers import CONFIG_FILES_LABEL, PROJECT_LABEL, WORKING_DIR_LABEL, stack_containers

if TYPE_CHECKING:
    from appliance.core import Appliance
    from appliance.runs import Run

_LOGGER = logging.getLogger(__name__)
# Services the stacks addon may offer; the first one registered is used to recreate a stack.
RECREATE_SERVICES = ("stacks.recreate", "stacks.deploy")


def stack_images(client: docker.DockerClient, stack: str) -> list[str]:
    """The distinct image references a stack's containers were created from; blocks."""
    containers = stack_containers(client, stack)
    if not containers:
        raise NotFound(f"no containers for stack {stack}")
    return sorted({c.attrs.get("Config", {}).get("Image", "") for c in containers} - {""})


def pull_images(client: docker.DockerClient, references: list[str]) -> list[dict[str, Any]]:
    """Pull each reference (references pinned by digest are left alone); blocks."""
    results = []
    for ref in references:
        repo, tag = parse_repository_tag(ref)
        if tag and tag.startswith("sha256:"):
            results.append({"image": ref, "id": None, "pulled": False})
            continue
        image = client.images.pull(repo, tag=tag or "latest")
        results.append({"image": ref, "id": image.id, "pulled": True})
    return results


def compose_project(client: docker.DockerClient, stack: str) -> dict[str, Any]:
    """The compose project of a stack from compose's own labels on its containers; blocks."""
    containers = stack_containers(client, stack)
    if not containers:
        raise NotFound(f"no containers for stack {stack}")
    labels = containers[0].attrs.get("Config", {}).get("Labels") or {}
    project = labels.get(PROJECT_LABEL)
    working_dir = labels.get(WORKING_DIR_LABEL)
    files = [f for f in (labels.get(CONFIG_FILES_LABEL) or "").split(",") if f]
    if not project or not working_dir or not files:
        raise Unavailable(f"stack {stack} was not started by Compose (no project labels)")
    missing = [f for f in files if not Path(f).is_file()]
    if missing or not Path(working_dir).is_dir():
        raise Unavailable(f"the compose files of stack {stack} are gone: {', '.join(missing) or working_dir}")
    return {"project": project, "working_dir": working_dir, "files": files}


async def _async_call_service(service: Any, stack: str, run: Run, reason: str) -> Any:
    """Call a stacks service with the keyword arguments it declares (its signature is theirs)."""
    offered = {"trigger": "manual", "actor": run.actor, "reason": reason, "force": True, "pull": False}
    try:
        params = dict(inspect.signature(service).parameters)
    except (TypeError, ValueError):
        params = {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = offered
    else:
        kwargs = {k: v for k, v in offered.items() if k in params}
    return await service(stack, **kwargs)


async def async_recreate(app: Appliance, stack: str, run: Run, *, reason: str) -> dict[str, Any]:
    """Recreate a stack's containers: through the stacks addon's service, else Compose's own labels."""
    for name in RECREATE_SERVICES:
        service = app.services.get(name)
        if service is not None and stack in _known_stacks(app):
            run.log(f"recreating {stack} through the {name} service")
            result = await _async_call_service(service, stack, run, reason)
            return {"via": name, "result": result}
    project = await app.async_run_blocking(compose_project, app.docker(), stack)
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
    proc = await asyncio.create_subprocess_exec(
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


def _known_stacks(app: Appliance) -> set[str]:
    """Stack names the stacks addon knows (config entries and, when present, its runtime data)."""
    names = {s["name"] for s in app.conf.get("stacks") or [] if isinstance(s, dict) and s.get("name")}
    data = app.data.get("stacks")
    mapping = getattr(data, "stacks", data)
    if isinstance(mapping, dict):
        names.update(str(k) for k in mapping)
    return names


def stack_window_name(app: Appliance, stack: str, default: str | None) -> str | None:
    """The maintenance window a stack is bound to (its `window` in the stacks config), else `default`."""
    for entry in app.conf.get("stacks") or []:
        if isinstance(entry, dict) and entry.get("name") == stack and entry.get("window"):
            return str(entry["window"])
    return default
