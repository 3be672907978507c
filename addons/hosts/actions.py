"""The hosts addon's action layer: `hosts.check|update|reboot|retry|acknowledge` as services that write the audit."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from appliance import cv
from appliance.services import ServiceCall

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .engine import HostEngine

ACTIONS = ("check", "update", "reboot", "retry", "acknowledge")
HOST_SCHEMA = vol.Schema({vol.Required("name"): cv.string, vol.Optional("dry_run", default=False): cv.boolean})


def register(app: Appliance, engine: HostEngine) -> None:
    """Offer one service per host action (deploy scope)."""
    for action in ACTIONS:
        app.services.register(f"hosts.{action}", functools.partial(_async_action, engine, action),
                              schema=HOST_SCHEMA, scope="deploy", description=f"{action.capitalize()} a host")


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
