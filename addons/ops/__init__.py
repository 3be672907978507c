"""Operations console: allowlisted typed operations, live container logs, host signals, image update checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from appliance import cv
from appliance.core import Appliance

from . import api, services, views
from .console import Console
from .const import CONSOLE_KEY, REGISTRY_KEY
from .host import DiskWatch
from .metrics import StackMetrics
from .operations import register_builtin
from .probes import PROBE_SCHEMA
from .registry import Operation, OperationRegistry, Target
from .selfimage import SelfImage
from .updates import UpdateChecker

DOMAIN = "ops"
RELEASE_NOTES = "https://github.com/dockmaster/dockmaster/releases"
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
        vol.Optional("release_notes", default=RELEASE_NOTES): vol.Any(None, cv.url),
    }
)


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Register the operations, routes, pages and the periodic checks."""
    registry = OperationRegistry(app)
    checker = UpdateChecker(app)
    self_image = SelfImage(app, checker, conf["release_notes"])
    console = Console(app, conf, registry, checker, DiskWatch(app, conf["disk_threshold"]), self_image)
    register_builtin(registry, conf, checker, console.async_after_check, self_image.async_check)
    stack_metrics = StackMetrics(app, checker)
    app.data[REGISTRY_KEY] = registry
    app.data[CONSOLE_KEY] = console
    app.sockets.caps[api.FOLLOWERS_CAP] = conf["max_log_followers"]
    api.register(app)
    views.register(app)
    services.register(app, console)
    app.ui.add_card("ops.self_image", "ops_self_image.html", self_image.async_card)
    app.ui.add_templates(Path(__file__).parent / "templates")
    app.ui.add_nav("Containers", "/containers", 40)
    app.scheduler.add_cron("ops.disk", conf["disk_check"], console.async_disk_tick, jitter=5, timeout=120)
    if conf["image_check"]:
        app.scheduler.add_cron("ops.image_check", conf["image_check"], console.async_image_tick,
                               jitter=60, timeout=900)

    async def _async_start() -> None:
        await checker.async_load()
        await stack_metrics.async_load()
        await self_image.async_load()
        if conf["image_check"]:  # in the background: a slow registry must not hold up the start
            app.scheduler.submit("ops.self_image", self_image.async_check, timeout=300)

    app.on_start(_async_start)
    app.on_stop(registry.async_stop)
    return True
