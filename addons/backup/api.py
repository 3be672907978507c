"""Backups over HTTP: the JSON API, the download, and the admin page with a Back up now button."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.http.identity import actor, client_ip
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY

from .engine import ENGINE_KEY, BackupEngine

DOMAIN = "backup"


def engine_of(request: web.Request) -> BackupEngine:
    """The backup engine of this appliance."""
    engine: BackupEngine = request.app[APPLIANCE_KEY].data[ENGINE_KEY]
    return engine


def _overview(engine: BackupEngine, backups: list[Any]) -> dict[str, Any]:
    return {"dir": str(engine.dir), "keep": engine.keep, "cron": engine.conf.get("cron"),
            "backups": [{**b.as_dict(), "download": f"/api/v1/backups/{b.name}"} for b in backups]}


async def async_list(request: web.Request) -> web.Response:
    """GET /api/v1/backups: the archives, newest first, with the folder, schedule and keep count."""
    engine = engine_of(request)
    backups = await engine.app.async_run_blocking(engine.list)
    return web.json_response(_overview(engine, backups))


async def async_create(request: web.Request) -> web.Response:
    """POST /api/v1/backups: make one archive now (201 with its name, size and run id)."""
    result = await engine_of(request).async_create(actor=actor(request), trigger="api", source=client_ip(request))
    return web.json_response(result, status=201)


async def async_download(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/backups/{name}: the archive as a download."""
    engine = engine_of(request)
    path = engine.path(request.match_info["name"])
    engine.app.store.audit(actor(request), "backup_download", path.name, source=client_ip(request))
    return web.FileResponse(path, headers={"Content-Type": "application/gzip",
                                           "Content-Disposition": f'attachment; filename="{path.name}"',
                                           "Cache-Control": "no-store"})


async def async_page(request: web.Request) -> web.Response:
    """The backups page: the list with download links and a Back up now button."""
    engine = engine_of(request)
    backups = await engine.app.async_run_blocking(engine.list)
    return render(request, "backup_list.html", {"overview": _overview(engine, backups),
                                                "made": request.query.get("made", "")})


async def async_page_create(request: web.Request) -> web.StreamResponse:
    """The page's Back up now button."""
    result = await engine_of(request).async_create(actor=actor(request), trigger="manual",
                                                   source=client_ip(request))
    raise web.HTTPSeeOther(f"/backups?made={result['backup']['name']}")


def register(routes: Any) -> None:
    """Declare the backup routes (admin only: an archive holds every secret)."""
    routes.get("/api/v1/backups", async_list, auth="admin", summary="List backups", tags=["backup"])
    routes.post("/api/v1/backups", async_create, auth="admin", summary="Make a backup now", tags=["backup"],
                responses={201: "the archive and its run"})
    routes.get("/api/v1/backups/{name}", async_download, auth="admin", summary="Download a backup",
               tags=["backup"])
    routes.get("/backups", async_page, auth="admin", summary="Backups", kind="ui", tags=["backup"],
               query={"made": str})
    routes.post("/backups", async_page_create, auth="admin", summary="Make a backup now", kind="ui",
                tags=["backup"])
