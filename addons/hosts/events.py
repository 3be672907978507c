"""Events of the hosts addon."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class HostStateChanged(Event):
    """A host moved to another state of its update state machine."""

    type: ClassVar[str] = "host_state_changed"
    key_field: ClassVar[str | None] = "host"
    host: str
    old_state: str
    new_state: str
    error: str | None = None


@dataclass(kw_only=True)
class UpdatesAvailable(Event):
    """A host has pending package updates."""

    type: ClassVar[str] = "updates_available"
    key_field: ClassVar[str | None] = "host"
    host: str
    count: int
    packages: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class HostUpdateSucceeded(Event):
    """A host update finished."""

    type: ClassVar[str] = "host_update_succeeded"
    key_field: ClassVar[str | None] = "host"
    host: str
    upgraded: int = 0
    run_id: int | None = None


@dataclass(kw_only=True)
class HostUpdateFailed(Event):
    """A host update failed."""

    type: ClassVar[str] = "host_update_failed"
    key_field: ClassVar[str | None] = "host"
    severity: ClassVar[str] = "critical"
    host: str
    error: str
    run_id: int | None = None


@dataclass(kw_only=True)
class RebootRequired(Event):
    """A host needs a reboot to finish an update."""

    type: ClassVar[str] = "reboot_required"
    key_field: ClassVar[str | None] = "host"
    severity: ClassVar[str] = "warning"
    host: str
    packages: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class HostRebooted(Event):
    """A host rebooted and its new boot identity was verified."""

    type: ClassVar[str] = "host_rebooted"
    key_field: ClassVar[str | None] = "host"
    host: str
    boot_id: str = ""
