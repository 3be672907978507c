"""Discovery configs and states of hosts and stacks, checked against Home Assistant's schema without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from addons.backup.contract import LastBackup
from addons.mqtt.entities import APPLIANCE, HOST, STACK, Discovery, Topics
from addons.mqtt.states import SUMMARY_LIMIT, SUMMARY_LINES, backup_state, host_states, stack_states, summary
from addons.stacks.contract import StackOverview

from .ha_schema import validate, validate_update_state

TOPICS = Topics("homeassistant", "dockmaster", "dm")
DISCOVERY = Discovery(TOPICS, "homelab", "1.0", lambda path: f"https://dm.lan{path}")


@dataclass
class _Status:
    state: str = "pending_updates"
    reason: str = "checked"
    error: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "curl", "current": "7.1", "new": "7.2"},
                                                                   {"name": "openssl"}])
    reboot_required: bool = True


class _Fleet:
    conf = {"db": {}}

    def status(self, name: str) -> _Status:
        return _Status()


def _view(**changes: Any) -> StackOverview:
    base: dict[str, Any] = dict(name="web", health="unhealthy", auto_deploy=True, deployed_revision="a" * 40,
                                latest_revision="b" * 40, latest_subject="Bump nginx", last_run_kind="deploy",
                                last_run_status="failed", last_run_time=0.0, last_run_error="health gate",
                                pending_subjects=("Bump nginx",), pending_total=1)
    return StackOverview(**(base | changes))


def test_every_entity_is_valid_for_home_assistant_and_unique() -> None:
    entities = (DISCOVERY.device(APPLIANCE, backup=True) + DISCOVERY.device(STACK, "web")
                + DISCOVERY.device(HOST, "db"))
    for entity in entities:
        validate(entity.platform, entity.config)
    assert len({e.config["unique_id"] for e in entities}) == len(entities) == 13
    assert len(DISCOVERY.device(APPLIANCE)) == 2  # no backup addon: no last-backup sensor
    host_update = next(e for e in entities if e.object_id == "host_db_update")
    assert host_update.config["command_topic"] == "dockmaster/host/db/install"
    assert host_update.config["payload_install"] == "install"
    assert host_update.config["device"]["via_device"] == "dm"
    assert host_update.config["device"]["model"] == "Host"
    rollback = next(e for e in entities if e.object_id == "stack_web_rollback")
    assert rollback.config["payload_press"] == "PRESS" and "state_topic" not in rollback.config
    backup = next(e for e in entities if e.object_id == "appliance_last_backup")
    assert backup.config["device_class"] == "timestamp"
    assert backup.config["state_topic"] == "dockmaster/appliance/state"
    assert backup.config["value_template"] == "{{ value_json.backup.time or 'None' }}"


def test_host_update_lists_pending_packages() -> None:
    state, update = host_states(_Fleet(), "db")  # type: ignore[arg-type]
    assert state == {"state": "pending_updates", "reason": "checked", "error": None, "pending": 2,
                     "reboot_required": True, "packages": ["curl 7.1 → 7.2", "openssl"]}
    validate_update_state(update)
    assert update["installed_version"] == "current"
    assert update["latest_version"] == "+2 packages"
    assert update["release_summary"] == "- curl 7.1 → 7.2\n- openssl"


def test_stack_update_versions_and_problem() -> None:
    state, update = stack_states(_view(), "https://dm.lan/stacks/web")
    validate_update_state(update)
    assert (update["installed_version"], update["latest_version"]) == ("a" * 12, "b" * 12)
    assert update["release_summary"] == "- Bump nginx"
    assert update["release_url"] == "https://dm.lan/stacks/web"
    assert state["problem"] == "ON" and state["last_result"] == "failed"
    assert state["commits"] == ["Bump nginx"] and state["pending_commits"] == 1


def test_never_deployed_stack_leaves_out_what_is_unknown() -> None:
    _, update = stack_states(_view(deployed_revision=None, last_run_status=None))
    validate_update_state(update)  # a null installed_version would make Home Assistant drop the message
    assert "installed_version" not in update and update["latest_version"] == "b" * 12
    _, current = stack_states(_view(latest_revision="a" * 40, pending_subjects=(), pending_total=0))
    validate_update_state(current)
    assert "release_summary" not in current


def test_release_summary_lists_every_commit_within_home_assistants_limits() -> None:
    subjects = tuple(f"Change {i}" for i in range(25, 0, -1))[:20]  # the newest 20 of 25
    state, update = stack_states(_view(pending_subjects=subjects, pending_total=25))
    text = update["release_summary"]
    assert len(text) <= SUMMARY_LIMIT
    lines = text.split("\n\n")[0].splitlines()
    assert lines == [f"- {s}" for s in subjects[:len(lines)]] and len(lines) <= SUMMARY_LINES
    assert text.endswith(f"… and {25 - len(lines)} more")
    assert state["commits"] == list(subjects) and state["pending_commits"] == 25
    # Short subjects: twenty lines fit, then the rest is counted.
    short = summary([str(i) for i in range(30)])
    assert short is not None and short.count("\n- ") == SUMMARY_LINES - 1 and short.endswith("… and 10 more")
    # Every line shown when they all fit.
    assert summary(["a", "b"]) == "- a\n- b"
    assert summary([]) is None


def test_release_summary_makes_untrusted_subjects_inert() -> None:
    text = summary(["[click](https://evil.example) <img src=x>\x1b[31m", "x" * 500])
    assert text is not None
    assert "\\[click\\]\\(https://evil.example\\) \\<img src=x\\>" in text
    assert "\x1b" not in text and len(text.splitlines()[1]) <= 102


def test_backup_state() -> None:
    assert backup_state(LastBackup(name=None, time=None, size=None, ok=True, error=None)) == {
        "time": None, "name": None, "size": None, "result": "never", "error": None}
    made = backup_state(LastBackup(name="b.tar.gz", time=86400.0, size=12, ok=True, error=None))
    assert made["time"] == "1970-01-02T00:00:00+00:00" and made["result"] == "succeeded"
    failed = backup_state(LastBackup(name="b.tar.gz", time=86400.0, size=12, ok=False, error="disk full"))
    assert failed["result"] == "failed" and failed["name"] == "b.tar.gz" and failed["error"] == "disk full"
