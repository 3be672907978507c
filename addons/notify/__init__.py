"""Notifications through Apprise: routed by event, severity and scope, folded, never blocking work."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from appliance.core import Appliance
from appliance.retention import PruneRule

from . import api, views
from .const import DOMAIN, ENGINE_KEY
from .engine import NotifyEngine
from .history import MIGRATIONS
from .schema import CONFIG_SCHEMA

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup"]


async def async_setup(app: Appliance, conf: list[dict[str, Any]]) -> bool:
    """Load the targets, listen to the bus, and add the API routes and the Notifications page."""
    await app.store.async_migrate(DOMAIN, MIGRATIONS)
    app.retention.register(PruneRule("deliveries", "notify_deliveries"))
    engine = NotifyEngine(app, conf)
    await engine.async_setup()
    app.data[ENGINE_KEY] = engine
    app.services.register("notify.test", functools.partial(api.async_test_service, engine), schema=api.TEST_BODY,
                          scope="admin", description="Send a test notification to one target (or all)")
    app.on_start(engine.async_start)
    app.on_stop(engine.async_stop)
    api.register(app.api)
    views.register(app.api)
    app.ui.add_nav("Notifications", "/notify", order=80)
    app.ui.add_templates(Path(__file__).parent / "templates")
    return True
