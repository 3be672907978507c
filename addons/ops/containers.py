"""Container inspection and actions through the docker SDK (every function here blocks: use an executor)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import docker
import voluptuous as vol
from docker.models.containers import Container

from appliance.errors import Forbidden, NotFound

MANAGED_LABEL = "io.dockmaster.managed"
STACK_LABEL = "io.dockmaster.stack"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"

LINE_CAP = 8 * 1024
_TRUNCATED = " [... line truncated ...]"
_CONTAINER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SERVICE_RE = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62})/([A-Za-z0-9][A-Za-z0-9_.-]{0,62})$")
CONTAINER_PATTERN = _CONTAINER_RE.pattern
SERVICE_PATTERN = _SERVICE_RE.pattern


def container_name(value: Any) -> str:
    """A container name or id (no path, no shell, no wildcard)."""
    text = value if isinstance(value, str) else ""
    if not _CONTAINER_RE.match(text):
        raise vol.Invalid("expected a container name or id")
    return text


def container_or_service(value: Any) -> str:
    """A container name or id, or `<stack>/<service>` for every container of a stack's service."""
    text = value if isinstance(value, str) else ""
    if _SERVICE_RE.match(text) or _CONTAINER_RE.match(text):
        return text
    raise vol.Invalid("expected a container name or id, or <stack>/<service>")


def service_target(target: str) -> str | None:
    """The stack of a `<stack>/<service>` target (None for a container name)."""
    match = _SERVICE_RE.match(target)
    return match.group(1) if match else None


def lock_key_for(target: str) -> str:
    """Services lock their whole stack; a single container locks itself."""
    match = _SERVICE_RE.match(target)
    return f"stack:{match.group(1)}" if match else f"container:{target}"


def cap_line(line: str) -> str:
    """Cut a line at LINE_CAP characters with a marker (log lines are untrusted and unbounded)."""
    if len(line) > LINE_CAP:
        return line[:LINE_CAP] + _TRUNCATED
    return line


def _parse_time(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python's fromisoformat takes at most microseconds.
    trimmed = re.sub(r"(\.\d{6})\d*", r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed).timestamp()
    except ValueError:
        return None


def describe(container: Container) -> dict[str, Any]:
    """State, health and uptime of one container, from its inspect data."""
    attrs = container.attrs
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    started = _parse_time(state.get("StartedAt"))
    running = bool(state.get("Running"))
    project = labels.get(PROJECT_LABEL)
    stack = labels.get(STACK_LABEL) or (project[3:] if project and project.startswith("dm-") else None)
    return {
        "id": container.id[:12] if container.id else "",
        "name": attrs.get("Name", "").lstrip("/"),
        "image": attrs.get("Config", {}).get("Image", ""),
        "image_id": attrs.get("Image", ""),
        "state": state.get("Status", "unknown"),
        "health": (state.get("Health") or {}).get("Status"),
        "started_at": started,
        "uptime": round(time.time() - started, 1) if running and started else None,
        "restart_count": attrs.get("RestartCount", 0),
        "exit_code": state.get("ExitCode") if not running else None,
        "stack": stack,
        "service": labels.get(SERVICE_LABEL),
        "managed": labels.get(MANAGED_LABEL) == "true",
    }


def list_containers(client: docker.DockerClient, *, stack: str | None = None,
                    managed_only: bool = False) -> list[dict[str, Any]]:
    """Every container (running or not) with state, health and uptime; blocks."""
    filters: dict[str, Any] = {}
    if stack:
        filters["label"] = [f"{STACK_LABEL}={stack}"]
    elif managed_only:
        filters["label"] = [f"{MANAGED_LABEL}=true"]
    found = client.containers.list(all=True, filters=filters)
    if stack and not found:
        found = client.containers.list(all=True, filters={"label": [f"{PROJECT_LABEL}=dm-{stack}"]})
    items = [describe(c) for c in found]
    return sorted(items, key=lambda c: (c["stack"] or "~", c["name"]))


def stack_containers(client: docker.DockerClient, stack: str, service: str | None = None) -> list[Container]:
    """A stack's containers (by the Dockmaster label, else the `dm-<stack>` compose project); blocks."""
    for label in (f"{STACK_LABEL}={stack}", f"{PROJECT_LABEL}=dm-{stack}"):
        labels = [label] + ([f"{SERVICE_LABEL}={service}"] if service else [])
        found = client.containers.list(all=True, filters={"label": labels})
        if found:
            return list(found)
    return []


def _managed(container: Container) -> bool:
    labels = container.attrs.get("Config", {}).get("Labels") or {}
    return bool(labels.get(MANAGED_LABEL) == "true")


def resolve(client: docker.DockerClient, target: str, *, managed_only: bool = False,
            admin: bool = True) -> list[Container]:
    """The containers a target names (NotFound when none); blocks.

    A container Dockmaster does not manage is NotFound with `managed_only`, and Forbidden for a
    caller without the admin scope: its log or its restart may concern the whole host.
    """
    match = _SERVICE_RE.match(target)
    if match:
        found = stack_containers(client, match.group(1), match.group(2))
        if not found:
            raise NotFound(f"no containers for service {match.group(2)} of stack {match.group(1)}")
    else:
        try:
            found = [client.containers.get(target)]
        except docker.errors.NotFound:
            raise NotFound(f"no such container: {target}") from None
    unmanaged = [c for c in found if not _managed(c)]
    if unmanaged and managed_only:
        raise NotFound(f"{target} is not a Dockmaster-managed container")
    if unmanaged and not admin:
        raise Forbidden(f"{target} is not managed by Dockmaster: this needs the 'admin' scope")
    return found


def act(client: docker.DockerClient, target: str, action: str, *, stop_timeout: int,
        managed_only: bool = False, admin: bool = True) -> list[dict[str, Any]]:
    """Restart, stop or start the containers of a target; returns their new state; blocks."""
    containers = resolve(client, target, managed_only=managed_only, admin=admin)
    for container in containers:
        # An explicit dispatch table: only these three actions exist (no getattr on user input).
        if action == "restart":
            container.restart(timeout=stop_timeout)
        elif action == "stop":
            container.stop(timeout=stop_timeout)
        elif action == "start":
            container.start()
        else:
            raise ValueError(f"unknown container action {action!r}")
    result = []
    for container in containers:
        container.reload()
        result.append(describe(container))
    return result


def tail_logs(client: docker.DockerClient, target: str, *, tail: int, since: int | None,
              managed_only: bool = False, admin: bool = True) -> list[str]:
    """The last `tail` lines of a container's log (since `since` seconds ago), each capped; blocks."""
    container = resolve(client, target, managed_only=managed_only, admin=admin)[0]
    kwargs: dict[str, Any] = {"tail": tail, "stdout": True, "stderr": True}
    if since:
        kwargs["since"] = int(time.time()) - since
    raw: bytes = container.logs(**kwargs)
    return [cap_line(line) for line in raw.decode("utf-8", "replace").splitlines()]


def prune_dangling(client: docker.DockerClient, label: str | None) -> dict[str, Any]:
    """Remove dangling images (optionally only those carrying `label`); blocks."""
    filters: dict[str, Any] = {"dangling": True}
    if label:
        filters["label"] = label
    result = client.images.prune(filters=filters)
    deleted = result.get("ImagesDeleted") or []
    return {
        "deleted": [next(iter(item.values())) for item in deleted if item],
        "space_reclaimed": result.get("SpaceReclaimed", 0),
    }


def system_df(client: docker.DockerClient) -> dict[str, Any]:
    """`docker system df` as totals per kind, plus the engine's root dir; blocks."""
    df = client.df()
    images = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    cache = df.get("BuildCache") or []
    return {
        "images": {
            "count": len(images),
            "size": df.get("LayersSize", 0),
            "reclaimable": sum(i.get("Size", 0) for i in images if not i.get("Containers")),
        },
        "containers": {"count": len(containers), "size": sum(c.get("SizeRw", 0) or 0 for c in containers)},
        "volumes": {"count": len(volumes),
                    "size": sum((v.get("UsageData") or {}).get("Size", 0) or 0 for v in volumes)},
        "build_cache": {"count": len(cache), "size": sum(c.get("Size", 0) or 0 for c in cache)},
        "docker_root_dir": client.info().get("DockerRootDir"),
    }
