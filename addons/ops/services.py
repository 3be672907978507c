"""The ops services other addons call by name: the image update status, and applying an update to a stack.

The stacks page shows update badges and an "Apply update" button through these, so the stacks addon
imports nothing of ops: `ops.image_updates` answers what the last check found, `ops.stack_update`
queues the `stack_update` operation (pull, recreate; waits for the stack's window; a run and an
audit row like any other operation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol

from appliance import cv
from appliance.services import ServiceCall

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .console import Console

IMAGE_UPDATES_SCHEMA = vol.Schema({vol.Optional("name"): cv.slug})
STACK_UPDATE_SCHEMA = vol.Schema({vol.Required("name"): cv.slug, vol.Optional("now", default=False): cv.boolean})


def register(app: Appliance, console: Console) -> None:
    """Offer `ops.image_updates` (read) and `ops.stack_update` (deploy)."""

    async def _async_image_updates(call: ServiceCall) -> dict[str, Any]:
        status = console.checker.status
        name = call.data.get("name")
        stacks = {name: status[name]} if name and name in status else ({} if name else dict(status))
        pending = sorted(n for n, s in stacks.items() if s.get("update_available"))
        return {"stacks": stacks, "updates_available": pending}

    async def _async_stack_update(call: ServiceCall) -> int:
        outcome = await console.registry.async_run(
            "stack_update", call.data["name"], {"now": call.data["now"]}, actor=call.actor, trigger=call.trigger,
            source=call.source, wait=False)
        return outcome.run_id

    app.services.register("ops.image_updates", _async_image_updates, schema=IMAGE_UPDATES_SCHEMA, scope="read",
                          description="The last image update check per stack (all, or one by name)")
    app.services.register("ops.stack_update", _async_stack_update, schema=STACK_UPDATE_SCHEMA, scope="deploy",
                          description="Apply image updates to a stack (pull, recreate) inside its window")
