"""Docker engines: stacks deploy to the local engine or to remote ones reached over SSH or TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from appliance import cv
from appliance.core import Appliance

from . import api
from .contract import ENGINES
from .directory import EngineDirectory
from .metrics import EngineMetrics
from .schema import CONFIG_SCHEMA

DOMAIN = "engines"

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup"]


async def async_setup(app: Appliance, conf: list[dict[str, Any]]) -> bool:
    """Add the configured engines, watch every engine's health, offer the engines page, API and service."""
    directory = EngineDirectory(app, conf)
    await directory.async_setup()
    app.data[ENGINES] = directory
    EngineMetrics(app, directory.monitor)
    app.data[api.DIRECTORY_KEY] = directory
    app.on_stop(directory.async_teardown)
    if not app.oneshot:
        app.on_start(directory.monitor.async_start)
    app.services.register("engines.check", directory.async_check_service,
                          schema=vol.Schema({vol.Optional("name"): cv.slug}), scope="deploy",
                          description="Check one engine (or every engine) now")
    api.register(app.api)
    app.ui.add_nav("Engines", "/engines", 25)
    app.ui.add_templates(Path(__file__).parent / "templates")
    return True
