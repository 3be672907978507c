"""JSON API of the hosts addon: list and show hosts, start checks, updates, reboots, retry, acknowledge."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.core import Appliance
from appliance.http.identity import actor, client_ip
from appliance.keys import APPLIANCE_KEY, BODY_KEY, QUERY_KEY

from .const import ENGINE_KEY, STATES
from .engine import HostEngine

PAGE_SIZE = 50

LIST_QUERY = {
    vol.Optional("q"): vol.All(str, vol.Length(max=100)),
    vol.Optional("tag"): cv.slug,
    vol.Optional("state"): vol.In(STATES),
    vol.Optional("page", default=1): vol.All(vol.Coerce(int), vol.Range(min=1)),
}
UPDATE_BODY = vol.Schema({vol.Optional("dry_run", default=False): cv.boolean})
EMPTY_BODY = vol.Schema({})


def engine_of(request: web.Request) -> HostEngine:
    """The host engine of this app."""
    engine: HostEngine = request.app[APPLIANCE_KEY].data[ENGINE_KEY]
    return engine


def _matches(host: dict[str, Any], words: list[str]) -> bool:
    """True when every word occurs in the host's name, address, user, tags, window, OS or state."""
    inventory = host.get("inventory") or {}
    text = " ".join(str(v) for v in (
        host["name"], host["address"], host["user"], host["state"], host.get("window") or "",
        inventory.get("os") or "", inventory.get("os_version") or "", *host["tags"],
    )).lower()
    return all(word in text for word in words)


def filter_hosts(engine: HostEngine, tag: str | None = None, state: str | None = None,
                 q: str | None = None) -> list[dict[str, Any]]:
    """Every host described, filtered by tag, state and search words, sorted by name."""
    hosts = [engine.describe(name) for name in sorted(engine.conf)]
    words = (q or "").lower().split()
    if words:
        hosts = [h for h in hosts if _matches(h, words)]
    if tag:
        hosts = [h for h in hosts if tag in h["tags"]]
    if state:
        hosts = [h for h in hosts if h["state"] == state]
    return hosts


async def async_list(request: web.Request) -> web.Response:
    """Hosts with state, pending updates and inventory; `?q=&tag=&state=&page=`."""
    query = request[QUERY_KEY]
    hosts = filter_hosts(engine_of(request), query.get("tag"), query.get("state"), query.get("q"))
    page = query["page"]
    chunk = hosts[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return web.json_response({"hosts": chunk, "page": page, "total": len(hosts), "page_size": PAGE_SIZE})


def tags_of(engine: HostEngine) -> dict[str, list[str]]:
    """Every tag with the names of its hosts, both sorted."""
    tags: dict[str, list[str]] = {}
    for name in sorted(engine.conf):
        for tag in engine.conf[name]["tags"]:
            tags.setdefault(tag, []).append(name)
    return dict(sorted(tags.items()))


async def async_tags(request: web.Request) -> web.Response:
    """Every tag with its hosts."""
    tags = tags_of(engine_of(request))
    return web.json_response({"tags": [{"name": tag, "hosts": hosts} for tag, hosts in tags.items()]})


async def async_show(request: web.Request) -> web.Response:
    """One host."""
    return web.json_response(engine_of(request).describe(request.match_info["name"]))


async def call_action(request: web.Request, action: str, trigger: str) -> dict[str, Any]:
    """Run the `hosts.<action>` service for this request's caller."""
    body = request[BODY_KEY] or {}
    data = {"name": request.match_info["name"], "dry_run": bool(body.get("dry_run", False))}
    result: dict[str, Any] = await request.app[APPLIANCE_KEY].services.async_call(
        f"hosts.{action}", data, actor=actor(request), source=client_ip(request), trigger=trigger)
    return result


async def async_action(request: web.Request, action: str) -> web.Response:
    """check | update | reboot | retry → 202 with the run id; acknowledge → 200 with the status."""
    result = await call_action(request, action, "api")
    if action == "acknowledge":
        return web.json_response(result["status"])
    return web.json_response(result, status=202)


def _action_handler(action: str) -> Any:
    async def _handler(request: web.Request) -> web.Response:
        return await async_action(request, action)

    _handler.__name__ = f"async_host_{action}"
    _handler.__doc__ = f"Start `{action}` on a host."
    return _handler


def register(app: Appliance) -> None:
    """Declare the host API routes."""
    app.api.get("/api/v1/hosts", async_list, auth="read", summary="Hosts with state and pending updates",
                query=LIST_QUERY, tags=["hosts"])
    app.api.get("/api/v1/tags", async_tags, auth="read", summary="Host tags with their hosts", tags=["hosts"])
    app.api.get("/api/v1/hosts/{name}", async_show, auth="read", summary="One host", tags=["hosts"])
    for action in ("check", "update", "reboot", "retry", "acknowledge"):
        app.api.post(
            f"/api/v1/hosts/{{name}}/{action}", _action_handler(action), auth="deploy",
            summary=f"Host action: {action}", body=UPDATE_BODY if action == "update" else EMPTY_BODY,
            tags=["hosts"], responses={202: "run started", 409: "host busy or in the wrong state"},
        )
