"""Home Assistant discovery configs: one table of entities per device kind, one builder for them all.

One device per stack, one per host and one for the appliance. Every entity reads one retained JSON
state topic of its device (`<base>/<kind>/<name>/state`) through a `value_template`, and its
attributes from the same topic; update entities read their own (`.../update`) in the shape Home
Assistant's MQTT update platform expects (see `states.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Spec:
    """One entity of a device kind: what it reads from the device's state and what it commands.

    `value` and `attributes` are Jinja expressions over the state JSON (`value_json`); `command` is
    the action part of its command topic. Update entities read the device's update topic instead.
    """

    platform: str
    key: str
    label: str
    value: str | None = None
    attributes: str | None = None
    command: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


STACK_ENTITIES = (
    Spec("update", "update", "Update", command="install",
         attributes="{'commits': value_json.commits, 'pending_commits': value_json.pending_commits}",
         options={"icon": "mdi:source-commit"}),
    Spec("binary_sensor", "health", "Health", value="value_json.problem",
         attributes="{'health': value_json.health}", options={"device_class": "problem"}),
    Spec("sensor", "last_deploy", "Last deploy", value="value_json.last_result",
         attributes="{'kind': value_json.last_kind, 'error': value_json.last_error,"
                    " 'revision': value_json.deployed_revision}",
         options={"icon": "mdi:rocket-launch"}),
    Spec("sensor", "last_deploy_time", "Last deploy time", value="value_json.last_time or 'None'",
         options={"device_class": "timestamp"}),
    Spec("switch", "auto_deploy", "Auto-deploy", value="'ON' if value_json.auto_deploy else 'OFF'",
         command="auto_deploy/set", options={"payload_on": "ON", "payload_off": "OFF", "entity_category": "config",
                                             "icon": "mdi:sync"}),
    Spec("button", "rollback", "Roll back", command="rollback", options={"icon": "mdi:undo"}),
)
HOST_ENTITIES = (
    Spec("update", "update", "Packages", command="install", attributes="{'packages': value_json.packages}",
         options={"icon": "mdi:package-up"}),
    Spec("sensor", "state", "State", value="value_json.state",
         attributes="{'reason': value_json.reason, 'error': value_json.error, 'pending': value_json.pending}",
         options={"icon": "mdi:state-machine"}),
    Spec("binary_sensor", "reboot_required", "Reboot required",
         value="'ON' if value_json.reboot_required else 'OFF'", options={"icon": "mdi:restart-alert"}),
    Spec("button", "check", "Check for updates", command="check", options={"icon": "mdi:magnify"}),
)
APPLIANCE_ENTITIES = (
    Spec("sensor", "active_runs", "Active runs", value="value_json.active_runs",
         attributes="{'runs': value_json.runs}", options={"state_class": "measurement", "icon": "mdi:run"}),
    Spec("sensor", "failed_addons", "Failed addons", value="value_json.failed_addons",
         attributes="{'addons': value_json.failed}",
         options={"state_class": "measurement", "entity_category": "diagnostic", "icon": "mdi:puzzle-remove"}),
)
# Only when the backup addon is loaded.
BACKUP_ENTITY = Spec(
    "sensor", "last_backup", "Last backup", value="value_json.backup.time or 'None'",
    attributes="{'archive': value_json.backup.name, 'size': value_json.backup.size,"
               " 'result': value_json.backup.result, 'error': value_json.backup.error}",
    options={"device_class": "timestamp", "icon": "mdi:archive-check"})
ENTITIES = {STACK: STACK_ENTITIES, HOST: HOST_ENTITIES, APPLIANCE: APPLIANCE_ENTITIES}
MODELS = {STACK: "Compose stack", HOST: "Host"}


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
        return {"identifiers": [f"{self.topics.node}_{kind}_{name}"], "name": name,
                "manufacturer": "Dockmaster", "model": MODELS[kind], "via_device": self.topics.node,
                "configuration_url": self.link(f"/{kind}s/{name}")}

    def entity(self, kind: str, name: str, spec: Spec) -> Entity:
        """The discovery config of one entity of a device."""
        t = self.topics
        object_id = f"{kind}_{name}_{spec.key}" if kind != APPLIANCE else f"appliance_{spec.key}"
        state = t.state(kind, name)
        config: dict[str, Any] = {
            "name": spec.label,
            "unique_id": f"{t.node}_{object_id}",
            "object_id": f"dockmaster_{object_id}",
            "availability": [{"topic": t.availability}],
            "payload_available": "online", "payload_not_available": "offline",
            "device": self._device(kind, name),
            "origin": self.origin,
            "qos": 1,
        }
        if spec.platform == "update":
            config["state_topic"] = t.update(kind, name)
        elif spec.value is not None:
            config |= {"state_topic": state, "value_template": f"{{{{ {spec.value} }}}}"}
        if spec.attributes is not None:
            config |= {"json_attributes_topic": state,
                       "json_attributes_template": f"{{{{ {spec.attributes} | tojson }}}}"}
        if spec.command is not None:
            config["command_topic"] = t.command(kind, name, spec.command)
            if spec.platform == "update":
                config["payload_install"] = PAYLOAD_INSTALL
            elif spec.platform == "button":
                config["payload_press"] = PAYLOAD_PRESS
        return Entity(spec.platform, object_id, config | spec.options)

    def device(self, kind: str, name: str = "", *, backup: bool = False) -> list[Entity]:
        """Every entity of one device (the appliance's last-backup sensor only when `backup`)."""
        specs = ENTITIES[kind] + ((BACKUP_ENTITY,) if kind == APPLIANCE and backup else ())
        return [self.entity(kind, name, spec) for spec in specs]
