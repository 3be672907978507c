"""Operations console: allowlisted typed operations, live container logs, host signals, image update checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from appliance import cv
from appliance.core import Appliance

from . import api, views
from .console import Console
from .const import CONSOLE_KEY, REGISTRY_KEY
from .host import DiskWatch
from .metrics import StackMetrics
from .operations import register_builtin
from .probes import PROBE_SCHEMA
from .registry import Operation, OperationRegistry, Target
from .updates import UpdateChecker

DOMAIN = "ops"
__all__ = ["CONFIG_SCHEMA", "DOMAIN", "Operation", "OperationRegistry", "Target", "async_setup"]

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("journal_units", default=[]): vol.All(cv.ensure_list, [vol.All(cv.string, vol.Match(
            r"^[A-Za-z0-9@._:-]{1,200}$", msg="invalid unit name"))]),
        vol.Optional("journal_dir"): cv.path,
        vol.Optional("probes", default=[]): vol.All(cv.ensure_list, [PROBE_SCHEMA], cv.unique_names()),
        vol.Optional("disk_threshold", default=90.0): cv.percentage,
        vol.Optional("disk_check", default="*/5 * * * *"): cv.cron,
        vol.Optional("image_check", default="0 */6 * * *"): vol.Any(None, cv.cron),
        vol.Optional("auto_update", default=False): cv.boolean,
        vol.Optional("update_window"): cv.slug,
        vol.Optional("reboot_required_file", default="/var/run/reboot-required"): cv.path,
        vol.Optional("containers", default="managed"): cv.one_of("all", "managed"),
        vol.Optional("max_log_followers", default=4): cv.positive_int,
    }
)


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Register the operations, routes, pages and the periodic checks."""
    registry = OperationRegistry(app)
    checker = UpdateChecker(app)
    console = Console(app, conf, registry, checker, DiskWatch(app, conf["disk_threshold"]))
    register_builtin(registry, conf, checker, console.async_after_check)
    stack_metrics = StackMetrics(app, checker)
    app.data[REGISTRY_KEY] = registry
    app.data[CONSOLE_KEY] = console
    app.sockets.caps[api.FOLLOWERS_CAP] = conf["max_log_followers"]
    api.register(app)
    views.register(app)
    app.ui.add_templates(Path(__file__).parent / "templates")
    app.ui.add_nav("Containers", "/containers", 40)
    app.scheduler.add_cron("ops.disk", conf["disk_check"], console.async_disk_tick, jitter=5, timeout=120)
    if conf["image_check"]:
        app.scheduler.add_cron("ops.image_check", conf["image_check"], console.async_image_tick,
                               jitter=60, timeout=900)

    async def _async_start() -> None:
        await checker.async_load()
        await stack_metrics.async_load()

    app.on_start(_async_start)
    app.on_stop(registry.async_stop)
    return True
