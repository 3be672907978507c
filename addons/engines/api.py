"""Engines over HTTP: the JSON API and the engines page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.datakeys import DataKey
from appliance.http.identity import actor, client_ip
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY

from .directory import EngineDirectory

DIRECTORY_KEY: DataKey[EngineDirectory] = DataKey("engines.directory")


def directory_of(request: web.Request) -> EngineDirectory:
    """The engine directory of this appliance."""
    return request.app[APPLIANCE_KEY].data[DIRECTORY_KEY]


async def async_list(request: web.Request) -> web.Response:
    """GET /api/v1/engines: every engine with reachability, version, containers and disk."""
    directory = directory_of(request)
    return web.json_response({"engines": [directory.describe(s) for s in directory.monitor.statuses()]})


async def async_get(request: web.Request) -> web.Response:
    """GET /api/v1/engines/{name}: one engine."""
    directory = directory_of(request)
    name = request.match_info["name"]
    directory.app.engines.get(name)
    return web.json_response(directory.describe(directory.monitor.get(name)))


async def async_check(request: web.Request) -> web.Response:
    """POST /api/v1/engines/{name}/check: check one engine now."""
    app = request.app[APPLIANCE_KEY]
    result = await app.services.async_call("engines.check", {"name": request.match_info["name"]},
                                           actor=actor(request), source=client_ip(request), trigger="api")
    return web.json_response(result["engines"][0])


async def async_page(request: web.Request) -> web.Response:
    """The engines page."""
    directory = directory_of(request)
    engines: list[dict[str, Any]] = [directory.describe(s) for s in directory.monitor.statuses()]
    return render(request, "engines.html", {"engines": engines})


async def async_page_check(request: web.Request) -> web.StreamResponse:
    """The page's Check now button (every engine)."""
    app = request.app[APPLIANCE_KEY]
    await app.services.async_call("engines.check", {}, actor=actor(request), source=client_ip(request))
    raise web.HTTPSeeOther("/engines")


def register(routes: Any) -> None:
    """Declare the engine routes."""
    routes.get("/api/v1/engines", async_list, auth="read", summary="List engines with their health",
               tags=["engines"])
    routes.get("/api/v1/engines/{name}", async_get, auth="read", summary="One engine's health", tags=["engines"])
    routes.post("/api/v1/engines/{name}/check", async_check, auth="deploy", summary="Check an engine now",
                tags=["engines"])
    routes.get("/engines", async_page, auth="read", summary="Engines", kind="ui", tags=["engines"])
    routes.post("/engines", async_page_check, auth="deploy", summary="Check every engine now", kind="ui",
                tags=["engines"])
