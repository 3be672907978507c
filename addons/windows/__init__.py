"""Maintenance windows: named cron openings with a duration that gate disruptive work."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.core import Appliance
from appliance.keys import APPLIANCE_KEY
from appliance.windows import MaintenanceWindow

DOMAIN = "windows"

WINDOW_SCHEMA = vol.Schema(
    {
        vol.Required("cron"): cv.cron,
        vol.Required("duration"): cv.positive_duration,
        vol.Optional("time_zone"): cv.time_zone,
    }
)
CONFIG_SCHEMA = vol.Schema({cv.slug: WINDOW_SCHEMA})


async def async_list(request: web.Request) -> web.Response:
    """Every window with whether it is open and when it next opens or closes."""
    app = request.app[APPLIANCE_KEY]
    data = []
    for name, window in sorted(app.windows.items()):
        closes = window.closes_at()
        data.append({
            "name": name, "cron": window.cron, "duration": window.duration.total_seconds(),
            "time_zone": window.time_zone, "open": closes is not None,
            "closes_at": closes.isoformat() if closes else None,
            "next_open": window.next_open().isoformat(), "text": window.describe(),
        })
    return web.json_response({"windows": data})


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Register each configured window on the appliance for the other addons."""
    for name, spec in conf.items():
        app.windows[name] = MaintenanceWindow(
            name, spec["cron"], spec["duration"], spec.get("time_zone") or app.time_zone
        )
    app.api.get("/api/v1/windows", async_list, auth="read", summary="Maintenance windows", tags=["windows"])
    return True
