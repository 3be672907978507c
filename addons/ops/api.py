"""The ops JSON API: list operations, run one, follow a container's log, per-stack image update status."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import docker
import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.engines import LOCAL
from appliance.errors import Forbidden, NotFound, Unavailable
from appliance.http.identity import actor, client_ip
from appliance.keys import APPLIANCE_KEY, BODY_KEY, IDENTITY_KEY, QUERY_KEY

from .const import CONSOLE_KEY, REGISTRY_KEY
from .containers import container_name, resolve
from .follow import LogFollower

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .console import Console
    from .registry import OperationRegistry

_RUN_BODY = vol.Schema({
    vol.Optional("target"): vol.Any(None, vol.All(str, vol.Length(max=256))),
    vol.Optional("args", default={}): vol.Any(None, dict),
})
FOLLOWERS_CAP = "log_followers_per_container"
_FOLLOW_QUERY = {vol.Optional("tail", default=100): vol.All(vol.Coerce(int), vol.Range(min=0, max=5000)),
                 vol.Optional("engine", default=LOCAL): cv.slug}


def _registry(request: web.Request) -> OperationRegistry:
    return request.app[APPLIANCE_KEY].data[REGISTRY_KEY]


def _console(request: web.Request) -> Console:
    return request.app[APPLIANCE_KEY].data[CONSOLE_KEY]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


async def ops_list(request: web.Request) -> web.Response:
    """Every operation with its argument schema (JSON Schema), scope, lock policy and timeout."""
    return _json({"operations": _registry(request).describe()})


async def ops_run(request: web.Request) -> web.Response:
    """Run one operation: 400 unknown/invalid, 403 scope, 409 busy, 200 result or 202 started."""
    registry = _registry(request)
    op = registry.get(request.match_info["op"])
    identity = request[IDENTITY_KEY]
    if identity is None or not identity.allows(op.scope):
        raise Forbidden(f"operation {op.name} needs the '{op.scope}' scope")
    body = request[BODY_KEY]
    outcome = await registry.async_run(
        op.name, body.get("target"), body.get("args"), actor=actor(request), trigger="api",
        source=client_ip(request), allows=identity.allows,
    )
    data: dict[str, Any] = {"operation": op.name, "run_id": outcome.run_id, "status": outcome.status}
    if outcome.task is not None:
        return _json(data, status=202)
    data["result"] = outcome.result
    return _json(data)


def _open_container(app: Appliance, client: Any, name: str, admin: bool) -> Any:
    """The container to follow, if the console shows it and the caller may read it; blocks."""
    managed_only = app.data[CONSOLE_KEY].conf["containers"] == "managed"
    try:
        return resolve(client, name, managed_only=managed_only, admin=admin)[0]
    except docker.errors.DockerException as err:
        raise Unavailable(f"the Docker engine is not reachable: {err}") from None


async def logs_follow(request: web.Request) -> web.StreamResponse:
    """Live log lines of a container as JSON WebSocket messages (capped lines, drop markers)."""
    app = request.app[APPLIANCE_KEY]
    try:
        name = container_name(request.match_info["container"])
    except vol.Invalid:
        raise NotFound("no such container") from None
    identity = request[IDENTITY_KEY]
    admin = identity is not None and identity.allows("admin")
    client = await app.engines.async_docker(request[QUERY_KEY]["engine"])
    container = await app.async_run_blocking(_open_container, app, client, name, admin)
    with app.sockets.acquire(actor(request), group=f"container {name}", cap=FOLLOWERS_CAP):
        app.store.audit(actor(request), "ops:logs_follow", name, source=client_ip(request))
        follower = LogFollower(container, tail=request[QUERY_KEY]["tail"])
        return await follower.async_serve(request)


async def updates_list(request: web.Request) -> web.Response:
    """The last image update check per stack, and of Dockmaster's own container (None outside one)."""
    console = _console(request)
    checker = console.checker
    return _json({"stacks": checker.status, "updates_available": checker.stacks_with_updates(),
                  "dockmaster": console.self_image.status})


async def updates_get(request: web.Request) -> web.Response:
    """The last image update check of one stack."""
    status = _console(request).checker.status.get(request.match_info["stack"])
    if status is None:
        raise NotFound("no image check recorded for this stack")
    return _json(status)


def register(app: Appliance) -> None:
    """Declare the ops API routes."""
    app.api.get("/api/v1/ops", ops_list, auth="read", summary="Operations and their argument schemas",
                tags=["ops"])
    app.api.post("/api/v1/ops/{op}", ops_run, auth="read", body=_RUN_BODY, tags=["ops"],
                 summary="Run an operation: {\"target\": ..., \"args\": {...}} (scope per operation)",
                 responses={202: "Started in the background", 409: "Target busy"}, body_limit=16 * 1024)
    app.api.get("/api/v1/ops/logs/{container}/follow", logs_follow, auth="read", query=_FOLLOW_QUERY,
                summary="WebSocket: live log lines of a container", tags=["ops"], websocket=True)
    app.api.get("/api/v1/ops/updates", updates_list, auth="read", summary="Image update status per stack",
                tags=["ops"])
    app.api.get("/api/v1/ops/updates/{stack}", updates_get, auth="read",
                summary="Image update status of one stack", tags=["ops"])
