"""Fleet updates: scheduled checks and waves of host updates inside maintenance windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from addons.hosts.contract import DEFAULT_FAN_OUT, HOSTS
from appliance import cv
from appliance.core import Appliance

from .waves import UPDATER_KEY, FleetUpdater

DOMAIN = "updates"

APPLY_SCHEMA = vol.Schema({
    vol.Optional("cron"): cv.cron,
    vol.Optional("batch_size", default=1): cv.positive_int,
    vol.Optional("delay", default="0s"): cv.duration,
    vol.Optional("max_fail_percentage", default=0): cv.percentage,
})

CONFIG_SCHEMA = vol.Schema({
    vol.Optional("check", default="0 */6 * * *"): cv.cron,
    vol.Optional("apply", default={}): APPLY_SCHEMA,
    vol.Optional("groups", default={}): {cv.slug: cv.ensure_list_of(cv.slug)},
    vol.Optional("fan_out", default=DEFAULT_FAN_OUT): cv.positive_int,
})


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Wire the check and apply schedules, the fleet API and the fleet page."""
    from . import api

    engine = app.data.get(HOSTS)
    if engine is None:
        raise ValueError("the hosts addon is not set up (add a hosts: list)")
    for group, members in conf["groups"].items():
        unknown = [m for m in members if m not in engine.conf]
        if unknown:
            raise ValueError(f"group '{group}' names unknown hosts: {', '.join(unknown)}")
    engine.set_fan_out(conf["fan_out"])
    updater = FleetUpdater(app, engine, conf)
    app.data[UPDATER_KEY] = updater
    app.scheduler.add_cron("updates.check", conf["check"], lambda: engine.async_check_all(trigger="schedule"),
                           jitter=30, key="updates:check")
    apply = conf["apply"]
    if apply.get("cron"):
        app.scheduler.add_cron(
            "updates.apply", apply["cron"],
            lambda: updater.async_start(
                batch_size=apply["batch_size"], delay=apply["delay"].total_seconds(),
                max_fail_percentage=apply["max_fail_percentage"], dry_run=False, flt={}, trigger="schedule",
            ),
            key="updates:apply",
        )
    api.register(app)
    app.ui.add_templates(Path(__file__).parent / "templates")
    app.ui.add_nav("Fleet", "/fleet", 41)
    return True
