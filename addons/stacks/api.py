"""JSON routes of the stacks addon (DESIGN §6): thin adapters over the `stacks.*` services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.datakeys import DataKey
from appliance.http.api import json_ok
from appliance.http.identity import actor, client_ip
from appliance.keys import APPLIANCE_KEY, BODY_KEY

from .actions import REVISION

if TYPE_CHECKING:
    from appliance.http.routes import RouteTable

    from .service import StackService

SERVICE_KEY: DataKey[StackService] = DataKey("stacks.service")
DEPLOY_BODY = vol.Schema({vol.Optional("dry_run", default=False): cv.boolean,
                          vol.Optional("revision"): vol.Any(None, REVISION)})
ROLLBACK_BODY = vol.Schema({vol.Optional("revision"): vol.Any(None, REVISION)})
PATCH_BODY = vol.Schema({vol.Required("auto_deploy"): cv.boolean})
LIFECYCLE_BODY = vol.Schema({})
LIFECYCLE_DOCS = {
    "stop": "Stop the stack's containers; automatic deploys and drift healing wait until it is started.",
    "start": "Start the stack's containers again and wait for them to be healthy.",
    "restart": "Restart the stack's containers and wait for them to be healthy.",
    "down": "Remove the stack's containers and networks; volumes and the working folder stay.",
}


def _service(request: web.Request) -> StackService:
    return request.app[APPLIANCE_KEY].data[SERVICE_KEY]


async def call_service(request: web.Request, name: str, data: dict[str, Any]) -> Any:
    """Call a `stacks.*` service for this request's caller (API trigger for tokens, manual for people)."""
    who = actor(request)
    return await request.app[APPLIANCE_KEY].services.async_call(
        name, data, actor=who, source=client_ip(request), trigger="api" if who.startswith("token:") else "manual")


async def stacks_list(request: web.Request) -> web.Response:
    """Every stack with deployed/good/bad revision, health, drift and last run."""
    service = _service(request)
    return json_ok({"stacks": await service.async_list(), "problems": service.engine.problems()})


async def stack_get(request: web.Request) -> web.Response:
    """One stack with its revision history, containers and last dry-run."""
    return json_ok(await _service(request).async_detail(request.match_info["name"]))


async def stack_patch(request: web.Request) -> web.Response:
    """Switch auto_deploy on or off (persisted)."""
    body = request[BODY_KEY]
    return json_ok(await call_service(request, "stacks.auto_deploy",
                                      {"name": request.match_info["name"], "auto_deploy": body["auto_deploy"]}))


async def stack_deploy(request: web.Request) -> web.Response:
    """Queue a deploy or dry-run; answers 202 with the run id."""
    body = request[BODY_KEY]
    data = {"name": request.match_info["name"], "dry_run": body["dry_run"], "revision": body.get("revision")}
    run_id = await call_service(request, "stacks.deploy", data)
    return json_ok({"run_id": run_id}, status=202)


async def stack_rollback(request: web.Request) -> web.Response:
    """Queue a rollback to the last good (or the given) revision; answers 202 with the run id."""
    run_id = await call_service(request, "stacks.rollback", {"name": request.match_info["name"],
                                                             "revision": request[BODY_KEY].get("revision")})
    return json_ok({"run_id": run_id}, status=202)


def _lifecycle_handler(action: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        run_id = await call_service(request, f"stacks.{action}", {"name": request.match_info["name"]})
        return json_ok({"run_id": run_id}, status=202)

    handler.__name__ = f"stack_{action}"
    handler.__doc__ = LIFECYCLE_DOCS[action]
    return handler


async def stack_move(request: web.Request) -> web.Response:
    """Move the stack to the engine its config names: deploy there, then take it down where it ran."""
    run_id = await call_service(request, "stacks.move", {"name": request.match_info["name"]})
    return json_ok({"run_id": run_id}, status=202)


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
    routes.post("/api/v1/stacks/{name}/move", stack_move, auth="deploy", body=LIFECYCLE_BODY, tags=tags,
                summary="Move a stack to the engine its config names", responses={202: "run queued"})
    routes.post("/api/v1/stacks/{name}/drift", stack_drift, auth="deploy", summary="Check a stack for drift now",
                tags=tags)
