"""Events of the stacks addon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class DeployStarted(Event):
    """A stack deploy began."""

    type: ClassVar[str] = "deploy_started"
    key_field: ClassVar[str | None] = "stack"
    stack: str
    revision: str
    reason: str
    run_id: int | None = None
    dry_run: bool = False


@dataclass(kw_only=True)
class DeploySucceeded(Event):
    """A stack deploy passed its health gate."""

    type: ClassVar[str] = "deploy_succeeded"
    key_field: ClassVar[str | None] = "stack"
    stack: str
    revision: str
    reason: str = ""
    run_id: int | None = None


@dataclass(kw_only=True)
class DeployFailed(Event):
    """A stack deploy failed."""

    type: ClassVar[str] = "deploy_failed"
    key_field: ClassVar[str | None] = "stack"
    severity: ClassVar[str] = "critical"
    stack: str
    revision: str
    error: str
    run_id: int | None = None


@dataclass(kw_only=True)
class RollbackSucceeded(Event):
    """A stack was rolled back to a good revision."""

    type: ClassVar[str] = "rollback_succeeded"
    key_field: ClassVar[str | None] = "stack"
    severity: ClassVar[str] = "warning"
    stack: str
    revision: str
    bad_revision: str | None = None
    run_id: int | None = None


@dataclass(kw_only=True)
class RollbackFailed(Event):
    """Rolling a stack back failed."""

    type: ClassVar[str] = "rollback_failed"
    key_field: ClassVar[str | None] = "stack"
    severity: ClassVar[str] = "critical"
    stack: str
    revision: str | None
    error: str
    run_id: int | None = None


@dataclass(kw_only=True)
class DriftDetected(Event):
    """A stack's running state differs from its last deploy."""

    type: ClassVar[str] = "drift_detected"
    key_field: ClassVar[str | None] = "stack"
    severity: ClassVar[str] = "warning"
    stack: str
    details: str
    healing: bool = False


@dataclass(kw_only=True)
class PolicyViolation(Event):
    """A deploy was refused before compose ran: its deploy policy or the working-folder rule; nothing changed."""

    type: ClassVar[str] = "policy_violation"
    key_field: ClassVar[str | None] = "stack"
    severity: ClassVar[str] = "warning"
    stack: str
    revision: str
    policy: str
    violations: list[str]
    run_id: int | None = None
