"""JSON routes of the stacks addon (DESIGN §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.http.api import json_ok
from appliance.http.middlewares import actor, client_ip
from appliance.keys import APPLIANCE_KEY, BODY_KEY

if TYPE_CHECKING:
    from appliance.http.routes import RouteTable

    from .service import StackService

SERVICE_KEY = "stacks"
_REVISION = vol.All(cv.string, vol.Match(r"^[0-9a-fA-F]{4,40}$", msg="revision must be a commit sha (4-40 hex)"))
DEPLOY_BODY = vol.Schema({vol.Optional("dry_run", default=False): cv.boolean,
                          vol.Optional("revision"): vol.Any(None, _REVISION)})
ROLLBACK_BODY = vol.Schema({vol.Optional("revision"): vol.Any(None, _REVISION)})
PATCH_BODY = vol.Schema({vol.Required("auto_deploy"): cv.boolean})
LIFECYCLE_BODY = vol.Schema({})


def _service(request: web.Request) -> StackService:
    service: StackService = request.app[APPLIANCE_KEY].data[SERVICE_KEY]
    return service


async def stacks_list(request: web.Request) -> web.Response:
    """Every stack with deployed/good/bad revision, health, drift and last run."""
    service = _service(request)
    return json_ok({"stacks": await service.async_list(), "problems": service.engine.problems()})


async def stack_get(request: web.Request) -> web.Response:
    """One stack with its revision history, containers and last dry-run."""
    return json_ok(await _service(request).async_detail(request.match_info["name"]))


async def stack_patch(request: web.Request) -> web.Response:
    """Switch auto_deploy on or off (persisted)."""
    service = _service(request)
    name = request.match_info["name"]
    await service.async_set_auto_deploy(name, request[BODY_KEY]["auto_deploy"], actor=actor(request),
                                        source=client_ip(request))
    return json_ok(await service.async_summary(name))


async def stack_deploy(request: web.Request) -> web.Response:
    """Queue a deploy or dry-run; answers 202 with the run id."""
    service = _service(request)
    name = request.match_info["name"]
    body = request[BODY_KEY]
    who = actor(request)
    run_id = await service.async_deploy(name=name, dry_run=body["dry_run"], revision=body.get("revision"),
                                        actor=who, trigger="api" if who.startswith("token:") else "manual")
    service.app.store.audit(who, "stack.dry_run" if body["dry_run"] else "stack.deploy", name,
                            source=client_ip(request), details={"run_id": run_id, "revision": body.get("revision")})
    return json_ok({"run_id": run_id}, status=202)


async def stack_rollback(request: web.Request) -> web.Response:
    """Queue a rollback to the last good (or the given) revision; answers 202 with the run id."""
    service = _service(request)
    name = request.match_info["name"]
    revision = request[BODY_KEY].get("revision")
    who = actor(request)
    run_id = await service.async_rollback(name=name, revision=revision, actor=who,
                                          trigger="api" if who.startswith("token:") else "manual")
    service.app.store.audit(who, "stack.rollback", name, source=client_ip(request),
                            details={"run_id": run_id, "revision": revision})
    return json_ok({"run_id": run_id}, status=202)


def _lifecycle_handler(action: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        who = actor(request)
        run_id = await _service(request).async_lifecycle(
            action, name=request.match_info["name"], actor=who, source=client_ip(request),
            trigger="api" if who.startswith("token:") else "manual")
        return json_ok({"run_id": run_id}, status=202)

    handler.__name__ = f"stack_{action}"
    handler.__doc__ = LIFECYCLE_DOCS[action]
    return handler


LIFECYCLE_DOCS = {
    "stop": "Stop the stack's containers; automatic deploys and drift healing wait until it is started.",
    "start": "Start the stack's containers again and wait for them to be healthy.",
    "restart": "Restart the stack's containers and wait for them to be healthy.",
    "down": "Remove the stack's containers and networks; volumes and the working folder stay.",
}


async def stack_drift(request: web.Request) -> web.Response:
    """Check one stack for drift now (heals it when auto_deploy is on)."""
    service = _service(request)
    name = request.match_info["name"]
    service.engine.spec(name)
    problems = await service.drift.async_check(name)
    return json_ok({"stack": name, "drift": problems})


def register(routes: RouteTable) -> None:
    """Declare the stacks API routes."""
    tags = ["stacks"]
    routes.get("/api/v1/stacks", stacks_list, auth="read", summary="List stacks", tags=tags)
    routes.get("/api/v1/stacks/{name}", stack_get, auth="read", summary="One stack with history", tags=tags)
    routes.patch("/api/v1/stacks/{name}", stack_patch, auth="deploy", summary="Turn auto_deploy on or off",
                 body=PATCH_BODY, tags=tags)
    routes.post("/api/v1/stacks/{name}/deploy", stack_deploy, auth="deploy", summary="Deploy or dry-run a stack",
                body=DEPLOY_BODY, tags=tags, responses={202: "run queued"})
    routes.post("/api/v1/stacks/{name}/rollback", stack_rollback, auth="deploy", summary="Roll a stack back",
                body=ROLLBACK_BODY, tags=tags, responses={202: "run queued"})
    for action, doc in LIFECYCLE_DOCS.items():
        routes.post(f"/api/v1/stacks/{{name}}/{action}", _lifecycle_handler(action), auth="deploy",
                    summary=doc.split(";")[0].split(" and ")[0].rstrip("."), body=LIFECYCLE_BODY, tags=tags,
                    responses={202: "run queued"})
    routes.post("/api/v1/stacks/{name}/drift", stack_drift, auth="deploy", summary="Check a stack for drift now",
                tags=tags)
