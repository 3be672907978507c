"""Backups of the appliance's own state: on a schedule, on demand (UI, API, CLI), listed and downloadable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from appliance import cv
from appliance.core import Appliance

from . import api
from .contract import BACKUPS
from .engine import ENGINE_KEY, BackupEngine

DOMAIN = "backup"

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("cron"): cv.cron,
        vol.Optional("keep", default=7): cv.positive_int,
        vol.Optional("to"): cv.path,
    }
)

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup"]


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Offer the backup service and pages; schedule the job when `cron` is set."""
    engine = BackupEngine(app, conf)
    app.data[ENGINE_KEY] = engine
    app.data[BACKUPS] = engine
    app.services.register("backup.create", engine.async_create_service, schema=vol.Schema({}), scope="admin",
                          description="Write a backup of the appliance's state now")
    if conf.get("cron") and not app.oneshot:
        app.scheduler.add_cron("backup", conf["cron"], engine.async_scheduled, jitter=30, timeout=3600)
    api.register(app.api)
    app.ui.add_nav("Backups", "/backups", 92)
    app.ui.add_templates(Path(__file__).parent / "templates")
    return True
