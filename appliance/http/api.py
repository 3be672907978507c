"""Core JSON API: health, status, runs and their logs, audit, live events, metrics, OpenAPI."""

from __future__ import annotations

import json
import time
from typing import Any

import voluptuous as vol
from aiohttp import web

from .. import __version__
from ..errors import NotFound
from ..keys import APPLIANCE_KEY, LIVE_KEY, QUERY_KEY
from .identity import actor
from .openapi import build_openapi, docs_page
from .routes import RouteTable

_RUNS_QUERY = {
    vol.Optional("kind"): str,
    vol.Optional("target"): str,
    vol.Optional("status"): vol.In(
        ["queued", "running", "succeeded", "failed", "cancelled", "interrupted", "skipped"]
    ),
    vol.Optional("limit", default=50): vol.All(vol.Coerce(int), vol.Range(min=1, max=500)),
    vol.Optional("before"): vol.All(vol.Coerce(int), vol.Range(min=1)),
}
_AUDIT_QUERY = {
    vol.Optional("actor"): str,
    vol.Optional("action"): str,
    vol.Optional("limit", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=1000)),
    vol.Optional("before"): vol.All(vol.Coerce(int), vol.Range(min=1)),
}
_LOG_QUERY = {
    vol.Optional("follow", default="false"): vol.All(str, vol.Lower, vol.In(["true", "false", "1", "0"])),
    vol.Optional("offset", default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
}
_EVENTS_QUERY = {vol.Optional("types"): str}


def _run_id(request: web.Request) -> int:
    try:
        return int(request.match_info["run_id"])
    except ValueError:
        raise NotFound("no such run") from None


async def health(request: web.Request) -> web.Response:
    """Liveness: always cheap, never touches the store."""
    return web.json_response({"status": "ok", "version": __version__})


async def status(request: web.Request) -> web.Response:
    """The appliance summary."""
    app = request.app[APPLIANCE_KEY]
    await app.store.async_size()
    return web.json_response(app.status())


async def runs_list(request: web.Request) -> web.Response:
    """Runs, newest first, filtered and paged by `before`."""
    app = request.app[APPLIANCE_KEY]
    query = request[QUERY_KEY]
    runs = await app.runs.list(
        kind=query.get("kind"), target=query.get("target"), status=query.get("status"),
        limit=query["limit"], before=query.get("before"),
    )
    next_before = runs[-1]["id"] if len(runs) == query["limit"] else None
    return web.json_response({"runs": runs, "next_before": next_before})


async def run_get(request: web.Request) -> web.Response:
    """One run, with its log."""
    run = await request.app[APPLIANCE_KEY].runs.get(_run_id(request))
    if run is None:
        raise NotFound("no such run")
    return web.json_response(run)


async def run_log(request: web.Request) -> web.StreamResponse:
    """A run's log as text; with `follow=true` it streams until the run finishes."""
    app = request.app[APPLIANCE_KEY]
    run_id = _run_id(request)
    run = await app.runs.get(run_id)
    if run is None:
        raise NotFound("no such run")
    follow = request[QUERY_KEY]["follow"] in ("true", "1")
    if not follow or run_id not in app.runs.active:
        return web.Response(text=run["log"] + ("\n" if run["log"] else ""), content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
    await response.prepare(request)
    # Count against every line ever logged, so lines dropped by the size cap do not shift the position.
    live = app.runs.active.get(run_id)
    sent = 0
    while live is not None:
        unsent = min(live.appended - sent, len(live.lines))
        if unsent > 0:
            await response.write(("\n".join(live.lines[-unsent:]) + "\n").encode())
        sent = live.appended
        if live.status not in ("queued", "running"):
            break
        await app.runs.wait_log(run_id, 15)
        live = app.runs.active.get(run_id)
    if live is None:  # finished while we waited: the lines logged at the very end come from the store
        final = await app.runs.get(run_id) or {}
        lines = (final.get("log") or "").splitlines()
        if len(lines) > sent:
            await response.write(("\n".join(lines[sent:]) + "\n").encode())
    await response.write_eof()
    return response


async def audit_list(request: web.Request) -> web.Response:
    """Who did what, newest first."""
    app = request.app[APPLIANCE_KEY]
    query = request[QUERY_KEY]
    where, params = [], []
    for column in ("actor", "action"):
        if query.get(column):
            where.append(f"{column} = ?")
            params.append(query[column])
    if query.get("before"):
        where.append("id < ?")
        params.append(query["before"])
    # Only fixed column names are joined into the SQL; every value is a bound parameter.
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await app.store.fetchall(
        f"SELECT * FROM audit {clause} ORDER BY id DESC LIMIT ?", (*params, query["limit"])  # noqa: S608
    )
    for row in rows:
        row["details"] = json.loads(row["details"] or "{}")
    return web.json_response({"audit": rows})


async def events_ws(request: web.Request) -> web.StreamResponse:
    """Live events as JSON messages; `?types=a,b` filters by type."""
    raw = request[QUERY_KEY].get("types")
    types = {t.strip() for t in raw.split(",") if t.strip()} if raw else None
    with request.app[APPLIANCE_KEY].sockets.acquire(actor(request)):
        return await request.app[LIVE_KEY].async_handle(request, types)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    app = request.app[APPLIANCE_KEY]
    return web.Response(body=app.metrics.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Generated": str(time.time())})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document generated from the declared routes."""
    app = request.app[APPLIANCE_KEY]
    return web.json_response(build_openapi(app.api.routes, title=f"Dockmaster API ({app.name})"))


async def docs(request: web.Request) -> web.Response:
    """A self-contained API docs page (no CDN)."""
    app = request.app[APPLIANCE_KEY]
    return web.Response(text=docs_page(build_openapi(app.api.routes, title="Dockmaster API")),
                        content_type="text/html")


def register(routes: RouteTable) -> None:
    """Declare the core API routes."""
    routes.get("/api/health", health, auth="public", summary="Liveness check", tags=["core"])
    routes.get("/api/v1/status", status, auth="read", summary="Appliance summary", tags=["core"])
    routes.get("/api/v1/runs", runs_list, auth="read", summary="List runs", query=_RUNS_QUERY, tags=["runs"])
    routes.get("/api/v1/runs/{run_id}", run_get, auth="read", summary="One run with its log", tags=["runs"])
    routes.get("/api/v1/runs/{run_id}/log", run_log, auth="read", summary="A run's log; follow=true streams it",
               query=_LOG_QUERY, tags=["runs"])
    routes.get("/api/v1/audit", audit_list, auth="admin", summary="Audit trail", query=_AUDIT_QUERY, tags=["audit"])
    routes.get("/api/v1/events", events_ws, auth="read", summary="WebSocket of live events",
               query=_EVENTS_QUERY, tags=["events"], websocket=True)
    routes.get("/metrics", metrics, auth="read", summary="Prometheus metrics", tags=["core"])
    routes.get("/api/openapi.json", openapi, auth="read", summary="OpenAPI document", tags=["core"])
    routes.get("/api/docs", docs, auth="read", summary="API documentation page", tags=["core"], kind="ui")


def json_ok(data: Any, status: int = 200) -> web.Response:
    """A JSON response (helper for addons)."""
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))
