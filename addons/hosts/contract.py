"""What other addons may use of the hosts addon: the fleet, its events, and the `updates:` block it schedules by."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol, TypedDict

import voluptuous as vol

from appliance import cv
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

__all__ = ["DEFAULT_FAN_OUT", "FLEET", "HOSTS", "UPDATES_SCHEMA", "FleetSchedule", "HostFleet", "HostRebooted",
           "HostStateChanged", "HostUpdateFailed", "HostUpdateSucceeded", "RebootRequired", "UpdatesAvailable",
           "UpdatesConfig"]

APPLY_SCHEMA = vol.Schema({
    vol.Optional("cron"): cv.cron,
    vol.Optional("batch_size", default=1): cv.positive_int,
    vol.Optional("delay", default="0s"): cv.duration,
    vol.Optional("max_fail_percentage", default=0): cv.percentage,
})

# The `updates:` block (validated by the `updates` config domain, carried out by this addon).
UPDATES_SCHEMA = vol.Schema({
    vol.Optional("check", default="0 */6 * * *"): cv.cron,
    vol.Optional("apply", default={}): APPLY_SCHEMA,
    vol.Optional("groups", default={}): {cv.slug: cv.ensure_list_of(cv.slug)},
    vol.Optional("fan_out", default=DEFAULT_FAN_OUT): cv.positive_int,
})


class ApplyConfig(TypedDict, total=False):
    """`updates.apply`: the automatic fleet update and the defaults of every fleet run."""

    cron: str
    batch_size: int
    delay: timedelta
    max_fail_percentage: float


class UpdatesConfig(TypedDict):
    """A validated `updates:` block."""

    check: str
    apply: ApplyConfig
    groups: dict[str, list[str]]
    fan_out: int


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


class FleetSchedule(Protocol):
    """The hosts addon's fleet scheduling: checks and waves of updates, set up from an `updates:` block."""

    def configure(self, conf: UpdatesConfig) -> None:
        """Check and apply on the block's crons, and offer the fleet API, page and `hosts.fleet_update` service."""


HOSTS: DataKey[HostFleet] = DataKey("hosts")
FLEET: DataKey[FleetSchedule] = DataKey("hosts.fleet")
