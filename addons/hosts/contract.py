"""What other addons may use of the hosts addon: the fleet (for waves of updates) and its events."""

from __future__ import annotations

from typing import Any, Protocol

from appliance.datakeys import DataKey

from .const import DEFAULT_FAN_OUT
from .events import (
    HostRebooted,
    HostStateChanged,
    HostUpdateFailed,
    HostUpdateSucceeded,
    RebootRequired,
    UpdatesAvailable,
)

__all__ = ["DEFAULT_FAN_OUT", "HOSTS", "HostFleet", "HostRebooted", "HostStateChanged", "HostUpdateFailed",
           "HostUpdateSucceeded", "RebootRequired", "UpdatesAvailable"]


class HostFleet(Protocol):
    """The configured hosts, their states, and queueing work on them (one job per host at a time)."""

    conf: dict[str, Any]

    def set_fan_out(self, fan_out: int) -> None:
        """How many hosts work at the same time."""

    def describe(self, name: str) -> dict[str, Any]:
        """One host as the API shows it."""

    def status(self, name: str) -> Any:
        """One host's state machine status (`.state`, `.pending`, ...)."""

    async def async_submit(self, name: str, action: str, *, trigger: str = "manual", actor: str | None = None,
                           dry_run: bool = False, reason: str | None = None, wait_busy: bool = False) -> Any:
        """Queue check, update or reboot of one host."""

    async def async_check_all(self, *, trigger: str = "schedule", names: list[str] | None = None) -> dict[str, str]:
        """Check every (or the named) host for updates."""


HOSTS: DataKey[HostFleet] = DataKey("hosts")
