"""The hosts addon's action layer: `hosts.check|update|reboot|retry|acknowledge` and `hosts.fleet_update`.

Each is a service with a schema and the deploy scope, and writes its audit row; the API and UI call
them by name through `app.services`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from appliance import cv
from appliance.services import ServiceCall

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .engine import HostEngine
    from .fleet import FleetUpdater

ACTIONS = ("check", "update", "reboot", "retry", "acknowledge")
HOST_SCHEMA = vol.Schema({vol.Required("name"): cv.string, vol.Optional("dry_run", default=False): cv.boolean})

FILTER_SCHEMA = vol.Schema({
    vol.Optional("tags", default=[]): cv.ensure_list_of(cv.slug),
    vol.Optional("groups", default=[]): cv.ensure_list_of(cv.slug),
    vol.Optional("hosts", default=[]): cv.ensure_list_of(cv.slug),
    vol.Optional("exclude", default=[]): cv.ensure_list_of(cv.slug),
})
# The body of `POST /api/v1/fleet/update`; values left out come from `updates.apply`.
FLEET_SCHEMA = vol.Schema({
    vol.Optional("batch_size"): cv.positive_int,
    vol.Optional("delay"): cv.duration,
    vol.Optional("max_fail_percentage"): cv.percentage,
    vol.Optional("dry_run", default=False): cv.boolean,
    vol.Optional("filter", default={}): FILTER_SCHEMA,
})


def register(app: Appliance, engine: HostEngine) -> None:
    """Offer one service per host action (deploy scope)."""
    for action in ACTIONS:
        app.services.register(f"hosts.{action}", functools.partial(_async_action, engine, action),
                              schema=HOST_SCHEMA, scope="deploy", description=f"{action.capitalize()} a host")


def register_fleet(app: Appliance, updater: FleetUpdater) -> None:
    """Offer `hosts.fleet_update` (deploy scope) once `updates:` configured the fleet."""
    app.services.register("hosts.fleet_update", functools.partial(_async_fleet_update, updater),
                          schema=FLEET_SCHEMA, scope="deploy",
                          description="Update the fleet (or a filtered part of it) in waves")


async def _async_fleet_update(updater: FleetUpdater, call: ServiceCall) -> dict[str, Any]:
    """Start a fleet run with `updates.apply` filling what the call leaves out, and audit it."""
    data, apply = call.data, updater.settings["apply"]
    run = await updater.async_start(
        batch_size=data.get("batch_size", apply["batch_size"]),
        delay=data.get("delay", apply["delay"]).total_seconds(),
        max_fail_percentage=data.get("max_fail_percentage", apply["max_fail_percentage"]),
        dry_run=data["dry_run"], flt=data["filter"], trigger=call.trigger, actor=call.actor,
    )
    updater.app.store.audit(call.actor, "fleet.update", "fleet", source=call.source,
                            details={"run_id": run.id, "dry_run": data["dry_run"], "filter": data["filter"]})
    return {"run_id": run.id}


async def _async_action(engine: HostEngine, action: str, call: ServiceCall) -> dict[str, Any]:
    """Start the action as a run (acknowledge answers at once) and audit it."""
    name = call.data["name"]
    engine.host_conf(name)
    details: dict[str, Any] = {"via": call.trigger}
    if action == "acknowledge":
        status = engine.acknowledge(name)
        engine.app.store.audit(call.actor, "host.acknowledge", name, source=call.source, details=details)
        return {"status": status.as_dict()}
    if action == "retry":
        job = await engine.async_retry(name, actor=call.actor)
    else:
        dry_run = bool(call.data["dry_run"]) and action == "update"
        job = await engine.async_submit(name, action, trigger=call.trigger, actor=call.actor, dry_run=dry_run)
        details["dry_run"] = dry_run
    details["run_id"] = job.run.id
    engine.app.store.audit(call.actor, f"host.{action}", name, source=call.source, details=details)
    return {"run_id": job.run.id, "host": name, "action": action}
