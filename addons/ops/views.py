"""The Containers page: state, health, uptime, restart, live logs, and the disk and probes panel."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from aiohttp import web

from appliance import cv
from appliance.engines import LOCAL
from appliance.errors import Unavailable
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY, QUERY_KEY

from . import containers, host
from .const import CONSOLE_KEY

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _gather(app: Appliance, client: Any, local: bool, managed_only: bool, reboot_flag: Path) -> dict[str, Any]:
    """Everything the page shows that needs the engine or the disk; blocks.

    On another engine only the containers Dockmaster manages are listed, and the disk panel stays
    with the appliance's own host.
    """
    data: dict[str, Any] = {"containers": [], "usage": None, "engine_error": None}
    try:
        data["containers"] = containers.list_containers(client, managed_only=managed_only or not local)
        data["usage"] = host.engine_usage(app) if local else None
    except Exception as err:  # the page still renders (with the error) when the engine is down
        _LOGGER.warning("Containers page: engine not reachable: %s", err)
        data["engine_error"] = str(err)
        data["usage"] = {"docker": None, "data_dir": host.disk_usage(app.data_dir), "docker_root": None}
    data["reboot"] = host.reboot_required(reboot_flag)
    return data


async def containers_page(request: web.Request) -> web.Response:
    """Containers with state, health and uptime; restart buttons; the log viewer; disk and probes."""
    app = request.app[APPLIANCE_KEY]
    console = app.data[CONSOLE_KEY]
    conf = console.conf
    engine = request[QUERY_KEY]["engine"]
    app.engines.get(engine)
    data: dict[str, Any]
    try:
        client = await app.engines.async_docker(engine)
    except Unavailable as err:  # the page still renders, with why
        client, error = None, err.message
    if client is None:
        data = {"containers": [], "usage": None, "engine_error": error, "reboot": {"required": False}}
    else:
        data = await app.async_run_blocking(_gather, app, client, engine == LOCAL, conf["containers"] == "managed",
                                            Path(conf["reboot_required_file"]))
    return render(request, "ops_containers.html", {
        **data, "engine": engine, "engines": app.engines.names(),
        "threshold": conf["disk_threshold"],
        "probes": (console.registry.last_probes or {}).get("results"),
        "probe_count": len(conf["probes"]),
        "updates": console.checker.status,
    })


async def script(request: web.Request) -> web.FileResponse:
    """The page's script (served from the addon, as the CSP allows only same-origin scripts)."""
    return web.FileResponse(STATIC / "ops.js", headers={"Content-Type": "text/javascript; charset=utf-8",
                                                        "Cache-Control": "no-cache"})


def register(app: Appliance) -> None:
    """Declare the ops UI routes."""
    app.api.get("/containers", containers_page, auth="read", summary="Containers", kind="ui",
                query={vol.Optional("engine", default=LOCAL): cv.slug})
    app.api.get("/ops/static/ops.js", script, auth="public", summary="Containers page script", kind="static")
