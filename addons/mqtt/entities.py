"""Home Assistant discovery configs and state payloads: pure functions of names and read models.

One device per stack, one per host and one for the appliance. Every entity reads one retained JSON
state topic of its device (`<base>/<kind>/<name>/state`) through a `value_template`; update entities
read their own (`.../update`) in the shape Home Assistant's MQTT update platform expects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from addons.hosts.contract import HostFleet
from addons.stacks.contract import StackOverview

# Home Assistant cuts an update entity's release summary at 255 characters.
SUMMARY_LIMIT = 255
PAYLOAD_INSTALL = "install"
PAYLOAD_PRESS = "PRESS"
STACK, HOST, APPLIANCE = "stack", "host", "appliance"


@dataclass(frozen=True)
class Topics:
    """Where everything goes: discovery under the prefix, states and commands under the base topic."""

    prefix: str
    base: str
    node: str  # discovery node id and the appliance device's identifier

    @property
    def availability(self) -> str:
        """`online` while connected; the broker's last will sets `offline`."""
        return f"{self.base}/status"

    @property
    def birth(self) -> str:
        """Home Assistant's own status topic (`online` when it starts)."""
        return f"{self.prefix}/status"

    def state(self, kind: str, name: str) -> str:
        """The retained JSON state of one device."""
        return f"{self.base}/{kind}/{name}/state" if kind != APPLIANCE else f"{self.base}/appliance/state"

    def update(self, kind: str, name: str) -> str:
        """The retained JSON state of a device's update entity."""
        return f"{self.base}/{kind}/{name}/update"

    def command(self, kind: str, name: str, action: str) -> str:
        """Where Home Assistant publishes a command."""
        return f"{self.base}/{kind}/{name}/{action}"

    def config(self, platform: str, object_id: str) -> str:
        """The retained discovery config of one entity."""
        return f"{self.prefix}/{platform}/{self.node}/{object_id}/config"

    @property
    def config_filter(self) -> str:
        """Every discovery config this node ever published (to clear what is no longer configured)."""
        return f"{self.prefix}/+/{self.node}/+/config"


@dataclass(frozen=True)
class Entity:
    """One discovery config: its topic and payload."""

    platform: str
    object_id: str
    config: dict[str, Any]


class Discovery:
    """Builds the discovery configs of the appliance, a stack or a host."""

    def __init__(self, topics: Topics, app_name: str, version: str, link: Any) -> None:
        """`link(path)` makes an absolute UI link."""
        self.topics = topics
        self.app_name = app_name
        self.version = version
        self.link = link
        self.origin = {"name": "Dockmaster", "sw_version": version}

    def _device(self, kind: str, name: str) -> dict[str, Any]:
        if kind == APPLIANCE:
            return {"identifiers": [self.topics.node], "name": f"Dockmaster {self.app_name}",
                    "manufacturer": "Dockmaster", "model": "Dockmaster", "sw_version": self.version,
                    "configuration_url": self.link("/")}
        model = "Compose stack" if kind == STACK else "Host"
        return {"identifiers": [f"{self.topics.node}_{kind}_{name}"], "name": f"{name}",
                "manufacturer": "Dockmaster", "model": model, "via_device": self.topics.node,
                "configuration_url": self.link(f"/{kind}s/{name}")}

    def _entity(self, platform: str, kind: str, name: str, key: str, label: str,
                **config: Any) -> Entity:
        object_id = f"{kind}_{name}_{key}" if kind != APPLIANCE else f"appliance_{key}"
        payload = {
            "name": label,
            "unique_id": f"{self.topics.node}_{object_id}",
            "object_id": f"dockmaster_{object_id}",
            "availability": [{"topic": self.topics.availability}],
            "payload_available": "online", "payload_not_available": "offline",
            "device": self._device(kind, name),
            "origin": self.origin,
            "qos": 1,
            **config,
        }
        return Entity(platform, object_id, payload)

    def appliance(self) -> list[Entity]:
        """The appliance device: active runs and failed addons."""
        state = self.topics.state(APPLIANCE, "")
        return [
            self._entity("sensor", APPLIANCE, "", "active_runs", "Active runs", state_topic=state,
                         value_template="{{ value_json.active_runs }}", state_class="measurement",
                         icon="mdi:run", json_attributes_topic=state,
                         json_attributes_template="{{ {'runs': value_json.runs} | tojson }}"),
            self._entity("sensor", APPLIANCE, "", "failed_addons", "Failed addons", state_topic=state,
                         value_template="{{ value_json.failed_addons }}", state_class="measurement",
                         entity_category="diagnostic", icon="mdi:puzzle-remove", json_attributes_topic=state,
                         json_attributes_template="{{ {'addons': value_json.failed} | tojson }}"),
        ]

    def stack(self, name: str) -> list[Entity]:
        """A stack: update (Install = deploy), health, last deploy, auto-deploy switch, rollback button."""
        state, t = self.topics.state(STACK, name), self.topics
        return [
            self._entity("update", STACK, name, "update", "Update", state_topic=t.update(STACK, name),
                         command_topic=t.command(STACK, name, "install"), payload_install=PAYLOAD_INSTALL,
                         icon="mdi:source-commit"),
            self._entity("binary_sensor", STACK, name, "health", "Health", state_topic=state,
                         device_class="problem", value_template="{{ value_json.problem }}",
                         json_attributes_topic=state,
                         json_attributes_template="{{ {'health': value_json.health} | tojson }}"),
            self._entity("sensor", STACK, name, "last_deploy", "Last deploy", state_topic=state,
                         value_template="{{ value_json.last_result }}", icon="mdi:rocket-launch",
                         json_attributes_topic=state,
                         json_attributes_template="{{ {'kind': value_json.last_kind, 'error': value_json.last_error,"
                                                  " 'revision': value_json.deployed_revision} | tojson }}"),
            self._entity("sensor", STACK, name, "last_deploy_time", "Last deploy time", state_topic=state,
                         device_class="timestamp", value_template="{{ value_json.last_time or 'None' }}"),
            self._entity("switch", STACK, name, "auto_deploy", "Auto-deploy", state_topic=state,
                         command_topic=t.command(STACK, name, "auto_deploy/set"), payload_on="ON",
                         payload_off="OFF", value_template="{{ 'ON' if value_json.auto_deploy else 'OFF' }}",
                         entity_category="config", icon="mdi:sync"),
            self._entity("button", STACK, name, "rollback", "Roll back",
                         command_topic=t.command(STACK, name, "rollback"), payload_press=PAYLOAD_PRESS,
                         icon="mdi:undo"),
        ]

    def host(self, name: str) -> list[Entity]:
        """A host: update (pending packages; Install = update in its window), state, reboot required, check."""
        state, t = self.topics.state(HOST, name), self.topics
        return [
            self._entity("update", HOST, name, "update", "Packages", state_topic=t.update(HOST, name),
                         command_topic=t.command(HOST, name, "install"), payload_install=PAYLOAD_INSTALL,
                         icon="mdi:package-up"),
            self._entity("sensor", HOST, name, "state", "State", state_topic=state,
                         value_template="{{ value_json.state }}", icon="mdi:state-machine",
                         json_attributes_topic=state,
                         json_attributes_template="{{ {'reason': value_json.reason, 'error': value_json.error,"
                                                  " 'pending': value_json.pending} | tojson }}"),
            self._entity("binary_sensor", HOST, name, "reboot_required", "Reboot required", state_topic=state,
                         value_template="{{ 'ON' if value_json.reboot_required else 'OFF' }}",
                         icon="mdi:restart-alert"),
            self._entity("button", HOST, name, "check", "Check for updates",
                         command_topic=t.command(HOST, name, "check"), payload_press=PAYLOAD_PRESS,
                         icon="mdi:magnify"),
        ]


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else None


def _short(rev: str | None) -> str | None:
    return rev[:12] if rev else None


def stack_states(view: StackOverview, link: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device state and the update entity's state of one stack."""
    state = {
        "health": view.health, "problem": "OFF" if view.health in ("healthy", "unknown") else "ON",
        "auto_deploy": view.auto_deploy, "deployed_revision": view.deployed_revision,
        "last_result": view.last_run_status or "never", "last_kind": view.last_run_kind,
        "last_time": _iso(view.last_run_time), "last_error": view.last_run_error,
    }
    update = {
        "installed_version": _short(view.deployed_revision), "latest_version": _short(view.latest_revision),
        "title": view.name, "release_summary": view.latest_subject[:SUMMARY_LIMIT] or None,
        "in_progress": view.last_run_status in ("queued", "running"),
    }
    if link:
        update["release_url"] = link
    return state, update


def host_states(fleet: HostFleet, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device state and the update entity's state of one host."""
    status = fleet.status(name)
    pending = [p.get("name", "") if isinstance(p, dict) else str(p) for p in status.pending]
    state = {
        "state": status.state, "reason": status.reason, "error": status.error, "pending": len(pending),
        "reboot_required": bool(status.reboot_required),
    }
    summary = ", ".join(pending)
    update = {
        "installed_version": "current",
        "latest_version": f"+{len(pending)} packages" if pending else "current",
        "title": f"{name} packages",
        "release_summary": (summary if len(summary) <= SUMMARY_LIMIT else summary[:SUMMARY_LIMIT - 1] + "…") or None,
        "in_progress": status.state in ("updating", "rebooting", "verifying"),
    }
    return state, update


def dumps(payload: dict[str, Any]) -> str:
    """Compact, stable JSON (equal states give equal payloads, so unchanged states are not re-sent)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
