"""Constants and the private data key of the mqtt addon."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.datakeys import DataKey

if TYPE_CHECKING:
    from .bridge import MqttBridge

DOMAIN = "mqtt"
BRIDGE_KEY: DataKey[MqttBridge] = DataKey("mqtt.bridge")
