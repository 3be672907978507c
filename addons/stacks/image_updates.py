"""Update badges and "Apply update" on the stacks pages, through the ops services (no import of ops).

`ops.image_updates` says what the last image check found per stack; `ops.stack_update` queues the
pull-and-recreate operation, which waits for the stack's window and leaves a run and an audit row.
Without the ops addon there are no badges and no button.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from aiohttp import web

from appliance.errors import Unavailable
from appliance.http.identity import actor
from appliance.keys import APPLIANCE_KEY, BODY_KEY

from .api import call_service

if TYPE_CHECKING:
    from appliance.http.routes import RouteTable

STATUS_SERVICE = "ops.image_updates"
APPLY_SERVICE = "ops.stack_update"
APPLY_FORM = vol.Schema({vol.Optional("next", default=""): vol.Any("", "list")})
# The operation's runs are named after it and the stack (`stack_update:<stack>`).
UPDATE_RUN_PREFIX = "stack_update:"


async def async_image_updates(request: web.Request, name: str | None = None) -> dict[str, dict[str, Any]]:
    """Per stack with a pending update: its images, when it was checked and the update run in flight, if any."""
    app = request.app[APPLIANCE_KEY]
    if not app.services.has(STATUS_SERVICE):
        return {}
    answer = await app.services.async_call(STATUS_SERVICE, {"name": name} if name else {}, actor=actor(request),
                                           trigger="manual")
    in_flight = {run.target.removeprefix(UPDATE_RUN_PREFIX): run.id for run in app.runs.active.values()
                 if run.kind == "operation" and run.target.startswith(UPDATE_RUN_PREFIX)}
    return {
        stack: {"images": [i for i in status["images"] if i["status"] == "update_available"],
                "checked": status.get("checked"), "run_id": in_flight.get(stack),
                "can_apply": app.services.has(APPLY_SERVICE)}
        for stack, status in answer["stacks"].items() if status.get("update_available")
    }


async def apply_update_submit(request: web.Request) -> web.StreamResponse:
    """Apply a stack's image update (pull, recreate, in its window); back to the list or on to the run page."""
    app = request.app[APPLIANCE_KEY]
    if not app.services.has(APPLY_SERVICE):
        raise Unavailable("image updates need the ops addon (an `ops:` block in the config)")
    run_id = await call_service(request, APPLY_SERVICE, {"name": request.match_info["name"]})
    raise web.HTTPSeeOther("/stacks" if request[BODY_KEY]["next"] == "list" else f"/runs/{run_id}")


def register(routes: RouteTable) -> None:
    """Declare the Apply update route of the stacks pages."""
    routes.post("/stacks/{name}/apply_update", apply_update_submit, auth="deploy", kind="ui", body=APPLY_FORM,
                summary="Apply an image update to the stack from the UI (pull, recreate, inside its window)")
