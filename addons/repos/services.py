"""The repos addon's services: `repos.sync` (queue a fetch now), audited."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from appliance import cv
from appliance.datakeys import DataKey
from appliance.services import ServiceCall

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .manager import RepoManager

MANAGER_KEY: DataKey[RepoManager] = DataKey("repos.manager")  # the full manager, for this addon's own pages
SYNC_SCHEMA = vol.Schema({vol.Required("name"): cv.slug, vol.Optional("reason"): cv.string,
                          vol.Optional("wait", default=False): cv.boolean})


def register(app: Appliance, manager: RepoManager) -> None:
    """Offer `repos.sync`."""
    app.services.register("repos.sync", functools.partial(_async_sync, manager), schema=SYNC_SCHEMA,
                          scope="deploy", description="Fetch a repo now (coalesced with a sync in flight)")


async def _async_sync(manager: RepoManager, call: ServiceCall) -> Any:
    """Queue a fetch (its run id), or with `wait` fetch now and answer with the result."""
    name = call.data["name"]
    manager.get(name)
    reason = call.data.get("reason") or f"sync requested by {call.actor}"
    if call.data["wait"]:
        result = await manager.async_sync(name, trigger=call.trigger, reason=reason, actor=call.actor)
        manager.app.store.audit(call.actor, "repo.sync", name, source=call.source,
                                details={"revision": result.revision, "error": result.error})
        return result
    run_id = await manager.async_request_sync(name, trigger=call.trigger, reason=reason, actor=call.actor)
    manager.app.store.audit(call.actor, "repo.sync", name, source=call.source, details={"run_id": run_id})
    return run_id
