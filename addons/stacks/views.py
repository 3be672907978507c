"""UI pages of the stacks addon: the stacks list and one stack's page with its actions."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY, BODY_KEY

from . import image_updates
from .api import SERVICE_KEY, call_service
from .chart import async_stack_chart
from .lifecycle import ACTIONS

if TYPE_CHECKING:
    from appliance.http.routes import RouteTable

    from .service import StackService

_REVISION = vol.Any("", vol.All(cv.string, vol.Match(r"^[0-9a-fA-F]{4,40}$", msg="revision must be a commit sha")))
DEPLOY_FORM = vol.Schema({vol.Optional("dry_run", default=False): cv.boolean,
                          vol.Optional("revision", default=""): _REVISION,
                          vol.Optional("next", default=""): vol.Any("", "list")})
ROLLBACK_FORM = vol.Schema({vol.Optional("revision", default=""): _REVISION})
TOGGLE_FORM = vol.Schema({vol.Required("auto_deploy"): cv.boolean})
LIFECYCLE_FORM = vol.Schema({vol.Optional("next", default=""): vol.Any("", "list")})


def _service(request: web.Request) -> StackService:
    return request.app[APPLIANCE_KEY].data[SERVICE_KEY]


async def stacks_page(request: web.Request) -> web.Response:
    """Stacks list: status, deployed revision and commit message, health, drift, last run, toggle."""
    service = _service(request)
    return render(request, "stacks_list.html", {"stacks": await service.async_list(),
                                                "problems": service.engine.problems(),
                                                "updates": await image_updates.async_image_updates(request)})


async def stack_page(request: web.Request) -> web.Response:
    """One stack: actions, deploy chart, revision history with reasons, the last dry-run's diff, containers."""
    name = request.match_info["name"]
    stack = await _service(request).async_detail(name)
    return render(request, "stacks_stack.html", {
        "stack": stack, "chart": await async_stack_chart(request.app[APPLIANCE_KEY], name),
        "update": (await image_updates.async_image_updates(request, name)).get(name)})


async def deploy_submit(request: web.Request) -> web.StreamResponse:
    """Deploy or dry-run from the stack page (on to the run page) or a row of the list (back to the list)."""
    body = request[BODY_KEY]
    run_id = await call_service(request, "stacks.deploy", {"name": request.match_info["name"],
                                                           "dry_run": body["dry_run"], "revision": body["revision"]})
    raise web.HTTPSeeOther("/stacks" if body["next"] == "list" else f"/runs/{run_id}")


async def rollback_submit(request: web.Request) -> web.StreamResponse:
    """Roll back from the stack page; continues on the run page."""
    run_id = await call_service(request, "stacks.rollback", {"name": request.match_info["name"],
                                                             "revision": request[BODY_KEY]["revision"]})
    raise web.HTTPSeeOther(f"/runs/{run_id}")


async def lifecycle_submit(request: web.Request, *, action: str) -> web.StreamResponse:
    """Stop, start, restart or down from the stack page or a row of the list; continues on the run page."""
    run_id = await call_service(request, f"stacks.{action}", {"name": request.match_info["name"]})
    raise web.HTTPSeeOther("/stacks" if request[BODY_KEY]["next"] == "list" else f"/runs/{run_id}")


async def move_submit(request: web.Request) -> web.StreamResponse:
    """The stack page's Move button; continues on the run page."""
    run_id = await call_service(request, "stacks.move", {"name": request.match_info["name"]})
    raise web.HTTPSeeOther(f"/runs/{run_id}")


async def toggle_submit(request: web.Request) -> web.StreamResponse:
    """The auto_deploy toggle of the stacks list."""
    await call_service(request, "stacks.auto_deploy", {"name": request.match_info["name"],
                                                       "auto_deploy": request[BODY_KEY]["auto_deploy"]})
    raise web.HTTPSeeOther("/stacks")


async def script(request: web.Request) -> web.FileResponse:
    """The stacks list's script (served from the addon, as the CSP allows only same-origin scripts)."""
    return web.FileResponse(Path(__file__).parent / "static" / "stacks.js",
                            headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"})


def register(routes: RouteTable) -> None:
    """Declare the stacks UI routes."""
    routes.get("/stacks", stacks_page, auth="read", summary="Stacks", kind="ui")
    routes.get("/stacks/static/stacks.js", script, auth="public", summary="Stacks list script", kind="static")
    routes.get("/stacks/{name}", stack_page, auth="read", summary="Stack", kind="ui")
    routes.post("/stacks/{name}/deploy", deploy_submit, auth="deploy", summary="Deploy from the UI", kind="ui",
                body=DEPLOY_FORM)
    routes.post("/stacks/{name}/rollback", rollback_submit, auth="deploy", summary="Roll back from the UI",
                kind="ui", body=ROLLBACK_FORM)
    for action in ACTIONS:
        routes.post(f"/stacks/{{name}}/{action}", functools.partial(lifecycle_submit, action=action), auth="deploy",
                    summary=f"{action.capitalize()} the stack from the UI", kind="ui", body=LIFECYCLE_FORM)
    routes.post("/stacks/{name}/move", move_submit, auth="deploy", summary="Move the stack to its configured engine",
                kind="ui", body=LIFECYCLE_FORM)
    image_updates.register(routes)
    routes.post("/stacks/{name}/auto_deploy", toggle_submit, auth="deploy", summary="Toggle auto_deploy",
                kind="ui", body=TOGGLE_FORM)
