"""Fleet API and page: `POST /api/v1/fleet/update`, host groups, and the form with a preview of the waves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from aiohttp import web

from appliance.core import Appliance
from appliance.http.identity import actor, client_ip
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY, BODY_KEY, QUERY_KEY

from .actions import FLEET_SCHEMA
from .const import FLEET_KEY

if TYPE_CHECKING:
    from .fleet import FleetUpdater

# The form sends flat, comma-separated fields.
FORM_FIELDS = {
    vol.Optional("batch_size"): str, vol.Optional("delay"): str, vol.Optional("max_fail_percentage"): str,
    vol.Optional("dry_run"): str, vol.Optional("tags"): str, vol.Optional("groups"): str,
    vol.Optional("hosts"): str, vol.Optional("exclude"): str,
}


def _updater(request: web.Request) -> FleetUpdater:
    return request.app[APPLIANCE_KEY].data[FLEET_KEY]


def _from_form(form: dict[str, Any]) -> dict[str, Any]:
    def split(key: str) -> list[str]:
        return [p.strip() for p in str(form.get(key) or "").split(",") if p.strip()]

    body: dict[str, Any] = {"filter": {k: split(k) for k in ("tags", "groups", "hosts", "exclude")}}
    for key in ("batch_size", "delay", "max_fail_percentage"):
        if form.get(key):
            body[key] = form[key]
    body["dry_run"] = form.get("dry_run") in ("true", "on", "1")
    return dict(FLEET_SCHEMA(body))


async def _async_start(request: web.Request, body: dict[str, Any]) -> int:
    """Run the `hosts.fleet_update` service for this request's caller; returns the fleet run's id."""
    result = await request.app[APPLIANCE_KEY].services.async_call(
        "hosts.fleet_update", body, actor=actor(request), source=client_ip(request), trigger="api")
    run_id: int = result["run_id"]
    return run_id


async def async_fleet_update(request: web.Request) -> web.Response:
    """Start a fleet update in waves → 202 with the run id."""
    run_id = await _async_start(request, request[BODY_KEY])
    return web.json_response({"run_id": run_id}, status=202)


async def fleet_page(request: web.Request) -> web.Response:
    """The fleet update form with a preview of the waves for the given values."""
    updater = _updater(request)
    settings = updater.settings
    query = request[QUERY_KEY]
    form = {key: str(query.get(key) or "") for key in ("tags", "groups", "hosts", "exclude", "batch_size",
                                                      "delay", "max_fail_percentage")}
    body = _from_form(form)
    batch = body.get("batch_size", settings["apply"]["batch_size"])
    return render(request, "hosts_fleet.html", {
        "form": form, "waves": updater.plan(body["filter"], batch), "groups": settings["groups"],
        "apply": settings["apply"], "batch": batch,
    })


async def fleet_submit(request: web.Request) -> web.StreamResponse:
    """The form's submit button: start the fleet run and show its live log."""
    run_id = await _async_start(request, _from_form(request[BODY_KEY]))
    raise web.HTTPSeeOther(f"/runs/{run_id}")


async def async_groups(request: web.Request) -> web.Response:
    """Every group of `updates.groups` with its hosts (config order) and their states."""
    updater = _updater(request)
    groups = [
        {"name": name, "hosts": list(members),
         "states": {member: updater.engine.status(member).state for member in members}}
        for name, members in sorted(updater.settings["groups"].items())
    ]
    return web.json_response({"groups": groups})


def register(app: Appliance) -> None:
    """Declare the fleet routes."""
    app.api.get("/api/v1/groups", async_groups, auth="read", summary="Host groups with their hosts", tags=["hosts"])
    app.api.post("/api/v1/fleet/update", async_fleet_update, auth="deploy", summary="Fleet update in waves",
                 body=FLEET_SCHEMA, tags=["hosts"], responses={202: "fleet run started", 409: "one already runs"})
    app.api.get("/fleet", fleet_page, auth="read", summary="Fleet update form", kind="ui", query=FORM_FIELDS)
    app.api.post("/fleet/update", fleet_submit, auth="deploy", summary="Start a fleet update", kind="ui",
                 body=vol.Schema(FORM_FIELDS), body_limit=8192)
