"""The stacks addon's action layer: every action is a service with a schema and a scope, and writes its audit row.

The API, the UI, the one-shot CLI, ops (image updates) and any later caller (MQTT) call these by
name through `app.services`; none of them repeats the action or its audit.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from appliance import cv
from appliance.services import ServiceCall

from .lifecycle import ACTIONS

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .service import StackService

REVISION = vol.All(cv.string, vol.Match(r"^[0-9a-fA-F]{4,40}$", msg="revision must be a commit sha (4-40 hex)"))
_OPTIONAL_REVISION = vol.Any(None, "", REVISION)
DEPLOY_SCHEMA = vol.Schema({
    vol.Required("name"): cv.slug,
    vol.Optional("dry_run", default=False): cv.boolean,
    vol.Optional("revision"): _OPTIONAL_REVISION,
    vol.Optional("wait", default=False): cv.boolean,
})
ROLLBACK_SCHEMA = vol.Schema({
    vol.Required("name"): cv.slug,
    vol.Optional("revision"): _OPTIONAL_REVISION,
    vol.Optional("wait", default=False): cv.boolean,
})
LIFECYCLE_SCHEMA = vol.Schema({vol.Required("name"): cv.slug, vol.Optional("wait", default=False): cv.boolean})
AUTO_DEPLOY_SCHEMA = vol.Schema({vol.Required("name"): cv.slug, vol.Required("auto_deploy"): cv.boolean})


def register(app: Appliance, service: StackService) -> None:
    """Offer `stacks.deploy|rollback|stop|start|restart|down|move` and `stacks.auto_deploy`."""
    services = app.services
    services.register("stacks.deploy", functools.partial(_async_deploy, service), schema=DEPLOY_SCHEMA,
                      scope="deploy", description="Deploy (or dry-run) a stack at the newest or a given revision")
    services.register("stacks.rollback", functools.partial(_async_rollback, service), schema=ROLLBACK_SCHEMA,
                      scope="deploy", description="Roll a stack back to its last good (or a given) revision")
    for action in ACTIONS:
        services.register(f"stacks.{action}", functools.partial(_async_lifecycle, service, action),
                          schema=LIFECYCLE_SCHEMA, scope="deploy", description=f"{action.capitalize()} a stack")
    services.register("stacks.move", functools.partial(_async_move, service), schema=LIFECYCLE_SCHEMA,
                      scope="deploy", description="Move a stack to the engine its config names")
    services.register("stacks.auto_deploy", functools.partial(_async_auto_deploy, service),
                      schema=AUTO_DEPLOY_SCHEMA, scope="deploy", description="Turn a stack's auto_deploy on or off")


async def _async_deploy(service: StackService, call: ServiceCall) -> int:
    data = call.data
    revision = data.get("revision") or None
    run_id = await service.async_deploy(name=data["name"], dry_run=data["dry_run"], revision=revision,
                                        actor=call.actor, trigger=call.trigger, wait=data["wait"])
    service.app.store.audit(call.actor, "stack.dry_run" if data["dry_run"] else "stack.deploy", data["name"],
                            source=call.source, details={"run_id": run_id, "revision": revision})
    return run_id


async def _async_rollback(service: StackService, call: ServiceCall) -> int:
    data = call.data
    revision = data.get("revision") or None
    run_id = await service.async_rollback(name=data["name"], revision=revision, actor=call.actor,
                                          trigger=call.trigger, wait=data["wait"])
    service.app.store.audit(call.actor, "stack.rollback", data["name"], source=call.source,
                            details={"run_id": run_id, "revision": revision})
    return run_id


async def _async_lifecycle(service: StackService, action: str, call: ServiceCall) -> int:
    return await service.async_lifecycle(action, name=call.data["name"], actor=call.actor, source=call.source,
                                         trigger=call.trigger, wait=call.data["wait"])


async def _async_move(service: StackService, call: ServiceCall) -> int:
    return await service.async_move(name=call.data["name"], actor=call.actor, source=call.source,
                                    trigger=call.trigger, wait=call.data["wait"])


async def _async_auto_deploy(service: StackService, call: ServiceCall) -> dict[str, Any]:
    name = call.data["name"]
    await service.async_set_auto_deploy(name, call.data["auto_deploy"], actor=call.actor, source=call.source)
    return await service.async_summary(name)
