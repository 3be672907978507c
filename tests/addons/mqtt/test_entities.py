"""Discovery configs and states of hosts and stacks, checked against Home Assistant's schema without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from addons.mqtt.entities import Discovery, Topics, host_states, stack_states
from addons.stacks.contract import StackOverview

from .ha_schema import validate

TOPICS = Topics("homeassistant", "dockmaster", "dm")
DISCOVERY = Discovery(TOPICS, "homelab", "1.0", lambda path: f"https://dm.lan{path}")


@dataclass
class _Status:
    state: str = "pending_updates"
    reason: str = "checked"
    error: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "curl"}, {"name": "openssl"}])
    reboot_required: bool = True


class _Fleet:
    conf = {"db": {}}

    def status(self, name: str) -> _Status:
        return _Status()


def test_every_entity_is_valid_for_home_assistant_and_unique() -> None:
    entities = DISCOVERY.appliance() + DISCOVERY.stack("web") + DISCOVERY.host("db")
    for entity in entities:
        validate(entity.platform, entity.config)
    assert len({e.config["unique_id"] for e in entities}) == len(entities) == 12
    host_update = next(e for e in entities if e.object_id == "host_db_update")
    assert host_update.config["command_topic"] == "dockmaster/host/db/install"
    assert host_update.config["device"]["via_device"] == "dm"


def test_host_update_lists_pending_packages() -> None:
    state, update = host_states(_Fleet(), "db")  # type: ignore[arg-type]
    assert state == {"state": "pending_updates", "reason": "checked", "error": None, "pending": 2,
                     "reboot_required": True}
    assert update["installed_version"] == "current"
    assert update["latest_version"] == "+2 packages"
    assert update["release_summary"] == "curl, openssl"


def test_stack_update_versions_and_problem() -> None:
    view = StackOverview(name="web", health="unhealthy", auto_deploy=True, deployed_revision="a" * 40,
                         latest_revision="b" * 40, latest_subject="Bump nginx", last_run_kind="deploy",
                         last_run_status="failed", last_run_time=0.0, last_run_error="health gate")
    state, update = stack_states(view)
    assert (update["installed_version"], update["latest_version"]) == ("a" * 12, "b" * 12)
    assert update["release_summary"] == "Bump nginx"
    assert state["problem"] == "ON" and state["last_result"] == "failed"
