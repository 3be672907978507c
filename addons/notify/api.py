"""JSON API: targets with their last outcome and recent deliveries, and the test notification."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from appliance.errors import Conflict, NotFound
from appliance.http.identity import actor, client_ip
from appliance.keys import APPLIANCE_KEY, BODY_KEY, QUERY_KEY
from appliance.services import ServiceCall

from .const import ENGINE_KEY
from .engine import NotifyEngine
from .events import NotificationTest

TEST_BODY = vol.Schema({vol.Optional("target"): vol.Any(None, vol.All(str, vol.Length(min=1, max=63)))})
LIST_QUERY = {vol.Optional("limit", default=50): vol.All(vol.Coerce(int), vol.Range(min=1, max=500)),
              vol.Optional("target"): vol.All(str, vol.Length(max=63))}


def engine_of(request: web.Request) -> NotifyEngine:
    """The notify engine of this appliance."""
    return request.app[APPLIANCE_KEY].data[ENGINE_KEY]


async def async_overview(engine: NotifyEngine, *, limit: int = 50, target: str | None = None) -> dict[str, Any]:
    """Targets (redacted) with their last delivery, and the newest deliveries."""
    last = await engine.log.async_last_by_target()
    targets = []
    for item in engine.targets.values():
        data = item.describe()
        data["last"] = last.get(item.name)
        targets.append(data)
    return {"targets": targets, "deliveries": await engine.log.async_recent(target=target, limit=limit)}


async def async_list(request: web.Request) -> web.Response:
    """GET /api/v1/notify: targets and recent deliveries."""
    query = request[QUERY_KEY]
    engine = engine_of(request)
    if query.get("target") and query["target"] not in engine.targets:
        raise NotFound(f"no notification target '{query['target']}'")
    return web.json_response(await async_overview(engine, limit=query["limit"], target=query.get("target")))


async def async_test(request: web.Request) -> web.Response:
    """POST /api/v1/notify/test: send a test notification now and answer with the outcome."""
    data = {"target": request[BODY_KEY].get("target")}
    result = await request.app[APPLIANCE_KEY].services.async_call(
        "notify.test", data, actor=actor(request), source=client_ip(request))
    return web.json_response(result)


async def async_test_service(engine: NotifyEngine, call: ServiceCall) -> dict[str, Any]:
    """The `notify.test` service: send a test message to one target (or all), audited."""
    name = call.data.get("target")
    if name and name not in engine.targets:
        raise NotFound(f"no notification target '{name}'", details={"targets": sorted(engine.targets)})
    if not engine.targets:
        raise Conflict("no notification target is configured")
    engine.app.bus.async_fire(NotificationTest(actor=call.actor, target=name))
    results = await engine.async_test(name, call.actor)
    outcome = "ok" if all(r["outcome"] == "sent" for r in results) else "failed"
    engine.app.store.audit(call.actor, "notify.test", name or "*", source=call.source, outcome=outcome)
    return {"outcome": outcome, "results": results}


def register(app_routes: Any) -> None:
    """Declare the notify API routes."""
    app_routes.get("/api/v1/notify", async_list, auth="read", summary="Notification targets and deliveries",
                   tags=["notify"], query=LIST_QUERY)
    app_routes.post("/api/v1/notify/test", async_test, auth="admin", summary="Send a test notification",
                    tags=["notify"], body=TEST_BODY)
