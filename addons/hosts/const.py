"""Names shared across the hosts addon: states, config shapes, defaults."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from appliance.datakeys import DataKey

if TYPE_CHECKING:
    from .engine import HostEngine
    from .fleet import FleetUpdater

DOMAIN = "hosts"

IDLE = "idle"
QUERYING = "querying"
PENDING = "pending_updates"
UPDATING = "updating"
WAITING_REBOOT = "waiting_reboot"
REBOOTING = "rebooting"
VERIFYING = "verifying"
FAILED = "failed"
DEFERRED = "deferred"
QUEUED = "queued"
STATES = (IDLE, QUERYING, PENDING, UPDATING, WAITING_REBOOT, REBOOTING, VERIFYING, FAILED, DEFERRED, QUEUED)

PACKAGE_MANAGERS = ("apt", "dnf", "apk", "pacman")
DEFAULT_FAN_OUT = 20
# How often a run waiting for its window looks at the clock again (seconds).
WINDOW_POLL = 30.0


class Timeouts(TypedDict):
    """Per-host time limits."""

    connect: timedelta
    command: timedelta
    lock: timedelta
    reboot: timedelta
    keepalive: timedelta


class HostConfig(TypedDict, total=False):
    """One validated entry of the `hosts:` list."""

    name: str
    address: str
    port: int
    user: str
    ssh_key: Path | None
    known_hosts: Path | None
    become: str
    tags: list[str]
    package_manager: str
    auto_reboot: bool
    window: str | None
    compose_paths: list[str]
    host_key_check: str
    upgrade: str
    timeouts: Timeouts


ENGINE_KEY: DataKey[HostEngine] = DataKey("hosts.engine")  # the full engine, for this addon's own API and pages
FLEET_KEY: DataKey[FleetUpdater] = DataKey("hosts.fleet_updater")  # set once `updates:` configured the fleet
