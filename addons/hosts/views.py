"""UI pages of the hosts addon: the hosts list, one host, and the action buttons."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.core import Appliance
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY, QUERY_KEY

from .actions import ACTIONS
from .api import PAGE_SIZE, call_action, engine_of, filter_hosts, tags_of

LIST_QUERY = {
    vol.Optional("q"): vol.All(str, vol.Length(max=100)),
    vol.Optional("tag"): vol.Any("", cv.slug),
    vol.Optional("state"): str,
    vol.Optional("page", default=1): vol.All(vol.Coerce(int), vol.Range(min=1)),
}
ACTION_BODY = vol.Schema({vol.Optional("dry_run", default=False): cv.boolean})


async def hosts_page(request: web.Request) -> web.Response:
    """All hosts with state, pending count and reboot badge; search, filter by tag, one page at a time."""
    engine = engine_of(request)
    query = request[QUERY_KEY]
    q = (query.get("q") or "").strip()
    tag = query.get("tag") or None
    hosts = filter_hosts(engine, tag, query.get("state") or None, q)
    pages = max(1, -(-len(hosts) // PAGE_SIZE))
    page = min(query["page"], pages)
    return render(request, "hosts_list.html", {
        "hosts": hosts[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], "total": len(hosts), "all": len(engine.conf),
        "tags": list(tags_of(engine)), "tag": tag, "q": q, "page": page, "pages": pages,
    })


async def host_page(request: web.Request) -> web.Response:
    """One host: pending packages, actions, inventory and recent runs."""
    app = request.app[APPLIANCE_KEY]
    name = request.match_info["name"]
    host = engine_of(request).describe(name)
    runs = [r for r in await app.runs.list(target=name, limit=30) if r["kind"].startswith("host_")][:10]
    return render(request, "hosts_host.html", {"host": host, "runs": runs})


async def host_action(request: web.Request) -> web.StreamResponse:
    """A button on the host page: start the action and go to its live log."""
    name, action = request.match_info["name"], request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    result = await call_action(request, action, "manual")
    if action == "acknowledge":
        raise web.HTTPSeeOther(f"/hosts/{name}")
    raise web.HTTPSeeOther(f"/runs/{result['run_id']}")


def register(app: Appliance) -> None:
    """Declare the host UI routes."""
    app.api.get("/hosts", hosts_page, auth="read", summary="Hosts", kind="ui", query=LIST_QUERY)
    app.api.get("/hosts/{name}", host_page, auth="read", summary="Host", kind="ui")
    app.api.post("/hosts/{name}/{action}", host_action, auth="deploy", summary="Host action button",
                 kind="ui", body=ACTION_BODY, body_limit=4096)
