"""Home Assistant MQTT discovery: every stack and host as a device, with update entities and deploy buttons."""

from __future__ import annotations

from typing import Any

from appliance.core import Appliance

from .bridge import MqttBridge
from .const import BRIDGE_KEY, DOMAIN
from .listeners import listen
from .schema import CONFIG_SCHEMA

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup"]


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Listen to the bus now; connect to the broker once every addon is set up (never in one-shot mode)."""
    bridge = MqttBridge(app, conf)
    app.data[BRIDGE_KEY] = bridge
    if app.oneshot:
        return True
    listen(app, bridge)
    app.on_start(bridge.async_start)
    app.on_stop(bridge.async_stop)
    return True
