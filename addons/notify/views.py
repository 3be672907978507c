"""The Notifications page: targets (redacted), recent deliveries, and a button that sends a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.http.ui import render

from .api import async_overview, engine_of

_SCRIPT = (Path(__file__).parent / "static" / "notify.js").read_text(encoding="utf-8")


async def async_page(request: web.Request) -> web.Response:
    """GET /notify: the page."""
    overview = await async_overview(engine_of(request), limit=50)
    return render(request, "notify_page.html", overview)


async def async_script(request: web.Request) -> web.Response:
    """GET /notify/notify.js: the page's script (the CSP allows same-origin scripts only)."""
    return web.Response(text=_SCRIPT, content_type="application/javascript",
                        headers={"Cache-Control": "no-cache"})


def register(app_routes: Any) -> None:
    """Declare the UI routes."""
    app_routes.get("/notify", async_page, auth="read", summary="Notifications", kind="ui", tags=["notify"])
    app_routes.get("/notify/notify.js", async_script, auth="read", summary="Notifications page script",
                   kind="ui", tags=["notify"])
