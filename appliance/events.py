"""Typed events: one dataclass per event type, all fired on the one bus."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

_EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(kw_only=True)
class Event:
    """Base of every event; `type` names it on the wire, `severity` guides notifications."""

    type: ClassVar[str] = "event"
    severity: ClassVar[str] = "info"
    time: float = field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register each concrete event type by name."""
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            _EVENT_TYPES[cls.type] = cls

    def as_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-friendly dict including its type and severity."""
        data = dataclasses.asdict(self)
        data["type"] = self.type
        data["severity"] = self.severity
        return data

    @property
    def key(self) -> str:
        """A stable key for folding repeats: the type plus the event's target."""
        target = getattr(self, "target", None) or getattr(self, "stack", None) or getattr(self, "host", None)
        return f"{self.type}:{target}" if target else self.type


def event_types() -> dict[str, type[Event]]:
    """Return every registered event type by name."""
    return dict(_EVENT_TYPES)


# --- core ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ApplianceStarted(Event):
    """The appliance finished setting up its addons."""

    type: ClassVar[str] = "appliance_started"
    version: str
    addons: list[str]


@dataclass(kw_only=True)
class AddonFailed(Event):
    """An addon could not be set up and is disabled."""

    type: ClassVar[str] = "addon_failed"
    severity: ClassVar[str] = "critical"
    domain: str
    error: str


@dataclass(kw_only=True)
class ConfigInvalid(Event):
    """The configuration has problems."""

    type: ClassVar[str] = "config_error"
    severity: ClassVar[str] = "critical"
    issues: list[str]


@dataclass(kw_only=True)
class RunStarted(Event):
    """A run (unit of work) began."""

    type: ClassVar[str] = "run_started"
    run_id: int
    kind: str
    target: str
    trigger: str
    reason: str


@dataclass(kw_only=True)
class RunFinished(Event):
    """A run reached a final status."""

    type: ClassVar[str] = "run_finished"
    run_id: int
    kind: str
    target: str
    status: str
    reason: str
    error: str | None = None


@dataclass(kw_only=True)
class RunLog(Event):
    """Lines appended to a running run's log (live view only; not stored as events)."""

    type: ClassVar[str] = "run_log"
    run_id: int
    lines: list[str]


# --- GitOps -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class RepoSynced(Event):
    """A repo was fetched."""

    type: ClassVar[str] = "repo_synced"
    repo: str
    revision: str
    previous: str | None = None
    changed: bool = False
    # What started the sync and who asked (carried into the deploys it causes).
    trigger: str = "poll"
    actor: str | None = None


@dataclass(kw_only=True)
class DeployStarted(Event):
    """A stack deploy began."""

    type: ClassVar[str] = "deploy_started"
    stack: str
    revision: str
    reason: str
    run_id: int | None = None
    dry_run: bool = False


@dataclass(kw_only=True)
class DeploySucceeded(Event):
    """A stack deploy passed its health gate."""

    type: ClassVar[str] = "deploy_succeeded"
    stack: str
    revision: str
    reason: str = ""
    run_id: int | None = None


@dataclass(kw_only=True)
class DeployFailed(Event):
    """A stack deploy failed."""

    type: ClassVar[str] = "deploy_failed"
    severity: ClassVar[str] = "critical"
    stack: str
    revision: str
    error: str
    run_id: int | None = None


@dataclass(kw_only=True)
class PolicyViolation(Event):
    """A deploy was refused before compose ran: its deploy policy or the working-folder rule; nothing changed."""

    type: ClassVar[str] = "policy_violation"
    severity: ClassVar[str] = "warning"
    stack: str
    revision: str
    policy: str
    violations: list[str]
    run_id: int | None = None


@dataclass(kw_only=True)
class RollbackSucceeded(Event):
    """A stack was rolled back to a good revision."""

    type: ClassVar[str] = "rollback_succeeded"
    severity: ClassVar[str] = "warning"
    stack: str
    revision: str
    bad_revision: str | None = None
    run_id: int | None = None


@dataclass(kw_only=True)
class RollbackFailed(Event):
    """Rolling a stack back failed."""

    type: ClassVar[str] = "rollback_failed"
    severity: ClassVar[str] = "critical"
    stack: str
    revision: str | None
    error: str
    run_id: int | None = None


@dataclass(kw_only=True)
class DriftDetected(Event):
    """A stack's running state differs from its last deploy."""

    type: ClassVar[str] = "drift_detected"
    severity: ClassVar[str] = "warning"
    stack: str
    details: str
    healing: bool = False


@dataclass(kw_only=True)
class WebhookReceived(Event):
    """A webhook delivery was processed."""

    type: ClassVar[str] = "webhook_received"
    repo: str
    provider: str
    event: str
    outcome: str
    delivery_id: str | None = None
    branch: str | None = None


# --- hosts --------------------------------------------------------------------------------


@dataclass(kw_only=True)
class HostStateChanged(Event):
    """A host moved to another state of its update state machine."""

    type: ClassVar[str] = "host_state_changed"
    host: str
    old_state: str
    new_state: str
    error: str | None = None


@dataclass(kw_only=True)
class UpdatesAvailable(Event):
    """A host has pending package updates."""

    type: ClassVar[str] = "updates_available"
    host: str
    count: int
    packages: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class HostUpdateSucceeded(Event):
    """A host update finished."""

    type: ClassVar[str] = "host_update_succeeded"
    host: str
    upgraded: int = 0
    run_id: int | None = None


@dataclass(kw_only=True)
class HostUpdateFailed(Event):
    """A host update failed."""

    type: ClassVar[str] = "host_update_failed"
    severity: ClassVar[str] = "critical"
    host: str
    error: str
    run_id: int | None = None


@dataclass(kw_only=True)
class RebootRequired(Event):
    """A host needs a reboot to finish an update."""

    type: ClassVar[str] = "reboot_required"
    severity: ClassVar[str] = "warning"
    host: str
    packages: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class HostRebooted(Event):
    """A host rebooted and its new boot identity was verified."""

    type: ClassVar[str] = "host_rebooted"
    host: str
    boot_id: str = ""


# --- operations ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class OperationFinished(Event):
    """An allowlisted operation ran."""

    type: ClassVar[str] = "operation_finished"
    operation: str
    target: str
    actor: str
    outcome: str


@dataclass(kw_only=True)
class LowDisk(Event):
    """A watched filesystem is over its usage threshold."""

    type: ClassVar[str] = "low_disk"
    severity: ClassVar[str] = "warning"
    target: str
    used_percent: float
    threshold: float


@dataclass(kw_only=True)
class ImageUpdateAvailable(Event):
    """A registry has a newer image for a tag a stack uses."""

    type: ClassVar[str] = "image_update_available"
    stack: str
    image: str
    local_digest: str | None = None
    remote_digest: str | None = None


@dataclass(kw_only=True)
class NotificationTest(Event):
    """A test notification was requested."""

    type: ClassVar[str] = "notification_test"
    actor: str
    target: str | None = None
