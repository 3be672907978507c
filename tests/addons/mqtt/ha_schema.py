"""Home Assistant's MQTT discovery schema for the platforms Dockmaster uses (keys, device, availability).

Written from Home Assistant's MQTT platform schemas (`homeassistant/components/mqtt/<platform>.py`,
`abbreviations.py`): a key Home Assistant does not know makes it reject the whole config.
"""

from __future__ import annotations

from typing import Any

COMMON = {"name", "unique_id", "object_id", "default_entity_id", "availability", "availability_mode",
          "availability_topic", "availability_template", "payload_available", "payload_not_available", "device",
          "origin", "qos", "icon", "entity_category", "enabled_by_default", "json_attributes_topic",
          "json_attributes_template", "encoding", "entity_picture"}
PLATFORMS: dict[str, tuple[set[str], set[str]]] = {  # platform: (required, optional)
    "update": (set(), {"state_topic", "command_topic", "payload_install", "value_template", "latest_version_topic",
                       "latest_version_template", "device_class", "release_summary", "release_url", "title",
                       "retain"}),
    "binary_sensor": ({"state_topic"}, {"value_template", "device_class", "payload_on", "payload_off",
                                        "expire_after", "force_update", "off_delay"}),
    "sensor": ({"state_topic"}, {"value_template", "device_class", "state_class", "unit_of_measurement",
                                 "expire_after", "force_update", "suggested_display_precision", "options"}),
    "switch": ({"command_topic"}, {"state_topic", "value_template", "payload_on", "payload_off", "state_on",
                                   "state_off", "optimistic", "retain", "device_class"}),
    "button": ({"command_topic"}, {"payload_press", "device_class", "retain"}),
}
DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "model_id", "sw_version",
               "hw_version", "serial_number", "via_device", "configuration_url", "suggested_area"}
DEVICE_CLASSES = {"binary_sensor": {"problem", "update", "running", "connectivity"},
                  "sensor": {"timestamp", "duration"}, "update": {"firmware"}, "switch": {"switch"},
                  "button": {"restart", "update", "identify"}}


def validate(platform: str, config: dict[str, Any]) -> None:
    """Raise AssertionError when Home Assistant would reject `config` for `platform`."""
    assert platform in PLATFORMS, f"unknown platform {platform}"
    required, optional = PLATFORMS[platform]
    unknown = set(config) - COMMON - required - optional
    assert not unknown, f"{platform}: keys Home Assistant does not know: {sorted(unknown)}"
    missing = required - set(config)
    assert not missing, f"{platform}: missing {sorted(missing)}"
    assert isinstance(config["unique_id"], str) and config["unique_id"]
    assert isinstance(config.get("name"), str | None)
    device = config["device"]
    assert set(device) <= DEVICE_KEYS, f"unknown device keys {set(device) - DEVICE_KEYS}"
    assert device["identifiers"] and all(isinstance(i, str) for i in device["identifiers"])
    availability = config["availability"]
    assert isinstance(availability, list) and availability
    assert all(set(a) <= {"topic", "payload_available", "payload_not_available", "value_template"}
               and isinstance(a["topic"], str) for a in availability)
    if "device_class" in config:
        assert config["device_class"] in DEVICE_CLASSES[platform], config["device_class"]
    if "entity_category" in config:
        assert config["entity_category"] in ("config", "diagnostic")
    for key, value in config.items():
        if key.endswith("_topic"):
            assert isinstance(value, str) and value and "+" not in value and "#" not in value, (key, value)


# Home Assistant's MQTT_JSON_UPDATE_SCHEMA (`components/mqtt/update.py`): these keys only, strings never null.
UPDATE_STATE = {"installed_version": str, "latest_version": str, "title": str, "release_summary": str,
                "release_url": str, "entity_picture": str, "in_progress": bool, "update_percentage": int | None}


def validate_update_state(payload: dict[str, Any]) -> None:
    """Raise AssertionError when Home Assistant would reject an update entity's JSON state."""
    unknown = set(payload) - set(UPDATE_STATE)
    assert not unknown, f"update state: keys Home Assistant rejects: {sorted(unknown)}"
    for key, value in payload.items():
        assert isinstance(value, UPDATE_STATE[key]), f"update state: {key}={value!r} is not {UPDATE_STATE[key]}"
    for key in ("release_url", "entity_picture"):
        if key in payload:
            assert payload[key].startswith(("http://", "https://")), payload[key]
