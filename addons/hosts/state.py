"""The per-host update state machine: its allowed transitions, persisted in the store; every change fires an event."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance.core import Appliance
from appliance.errors import Conflict

from .const import (
    DEFERRED,
    FAILED,
    IDLE,
    PENDING,
    QUERYING,
    QUEUED,
    REBOOTING,
    UPDATING,
    VERIFYING,
    WAITING_REBOOT,
)
from .events import HostStateChanged

_LOGGER = logging.getLogger(__name__)

# Where a new run starts from a state the host rests in: a check (or a dry-run) queries, an update
# updates, a reboot reboots, and a disruptive run outside the host's window first waits as `queued`.
_RUN_STARTS = frozenset({QUERYING, UPDATING, REBOOTING, QUEUED, FAILED})

# Every state change the engine may make; `transition()` refuses any other. Any state may fail.
TRANSITIONS: dict[str, frozenset[str]] = {
    IDLE: _RUN_STARTS,
    PENDING: _RUN_STARTS,
    WAITING_REBOOT: _RUN_STARTS,
    # The lock stayed held: retry (or the next check or apply) starts the run again.
    DEFERRED: _RUN_STARTS,
    # retry starts the failed action again (or a new run starts); acknowledge goes back to idle.
    # failed -> failed: a retried run that fails before its first step (the host is unreachable).
    FAILED: _RUN_STARTS | {IDLE},
    # check and dry-run: updates pending, only a reboot pending, or nothing; a held lock defers.
    QUERYING: frozenset({PENDING, WAITING_REBOOT, IDLE, DEFERRED, FAILED}),
    # updating -> updating records the upgrade before the reboot is decided; then idle (no reboot
    # needed), waiting_reboot (auto_reboot off, or the window closed) or rebooting.
    UPDATING: frozenset({UPDATING, IDLE, WAITING_REBOOT, REBOOTING, DEFERRED, FAILED}),
    # queued -> queued: the window closed while the run waited for a fan-out slot (a new opening).
    QUEUED: frozenset({QUEUED, UPDATING, REBOOTING, FAILED}),
    REBOOTING: frozenset({VERIFYING, FAILED}),
    VERIFYING: frozenset({IDLE, FAILED}),
}


class InvalidTransition(Conflict):
    """A host was asked to move between two states the state machine does not connect."""

    def __init__(self, name: str, old: str, new: str) -> None:
        """Name the host and both states."""
        targets = sorted(TRANSITIONS.get(old, frozenset()) | {FAILED})
        super().__init__(f"host '{name}' cannot go from {old} to {new} (from {old} only to {', '.join(targets)})",
                         details={"host": name, "old_state": old, "new_state": new})
        self.old = old
        self.new = new


def allowed(old: str, new: str) -> bool:
    """True when the state machine lets a host move from `old` to `new` (any state may fail)."""
    return new == FAILED or new in TRANSITIONS.get(old, frozenset())


MIGRATIONS = [
    """
    CREATE TABLE hosts_state (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        updated REAL NOT NULL
    );
    """,
]


@dataclass
class HostStatus:
    """What Dockmaster knows about a host: state, pending packages, last error, inventory."""

    name: str
    state: str = IDLE
    previous: str | None = None
    reason: str = ""
    pending: list[dict[str, Any]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    reboot_required: bool = False
    reboot_packages: list[str] = field(default_factory=list)
    error: str | None = None
    error_time: float | None = None
    failed_action: str | None = None
    retries: int = 0
    package_manager: str | None = None
    boot_id: str | None = None
    pid1_start: str | None = None
    inventory: dict[str, Any] = field(default_factory=dict)
    last_check: float | None = None
    last_update: float | None = None
    last_run_id: int | None = None
    updated: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        """The state as shown: `pending_updates(3)` carries its count."""
        return f"{PENDING}({len(self.pending)})" if self.state == PENDING else self.state

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form with the display label."""
        data = asdict(self)
        data["label"] = self.label
        data["pending_count"] = len(self.pending)
        return data


class StateStore:
    """Loads, changes and persists host statuses."""

    def __init__(self, app: Appliance) -> None:
        """Bind to the appliance's store and bus."""
        self.app = app
        self.hosts: dict[str, HostStatus] = {}

    async def async_load(self, names: list[str]) -> None:
        """Create the table and read each configured host's last status."""
        await self.app.store.async_migrate("hosts", MIGRATIONS)
        rows = await self.app.store.fetchall("SELECT name, state, data FROM hosts_state")
        saved = {row["name"]: row for row in rows}
        known = set(HostStatus.__dataclass_fields__)
        for name in names:
            row = saved.get(name)
            status = HostStatus(name)
            if row:
                data = {k: v for k, v in json.loads(row["data"]).items() if k in known}
                status = HostStatus(**{**data, "name": name, "state": row["state"]})
            self.hosts[name] = status

    def get(self, name: str) -> HostStatus:
        """The status of one host."""
        return self.hosts[name]

    def save(self, status: HostStatus) -> None:
        """Persist a status (batched write)."""
        status.updated = time.time()
        data = status.as_dict()
        data.pop("label")
        data.pop("pending_count")
        self.app.store.enqueue(
            "INSERT INTO hosts_state (name, state, data, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET state = excluded.state, data = excluded.data, updated = excluded.updated",
            (status.name, status.state, json.dumps(data, default=str), status.updated),
        )

    def transition(self, name: str, new_state: str, *, reason: str = "", error: str | None = None,
                   **changes: Any) -> HostStatus:
        """Move a host to `new_state`, persist it and fire `host_state_changed`; InvalidTransition when not allowed."""
        status = self.hosts[name]
        old = status.state
        if not allowed(old, new_state):
            raise InvalidTransition(name, old, new_state)
        for key, value in changes.items():
            setattr(status, key, value)
        if new_state == FAILED:
            status.error = error
            status.error_time = time.time()
        elif new_state in (IDLE, PENDING, WAITING_REBOOT):
            status.error = None  # recovered (or acknowledged): the error no longer describes the host
        if old != new_state:
            status.previous = old
        status.state = new_state
        status.reason = reason
        self.save(status)
        if old != new_state or error:
            _LOGGER.info("Host %s: %s -> %s %s", name, old, new_state, reason)
            self.app.bus.async_fire(HostStateChanged(host=name, old_state=old, new_state=new_state, error=error))
        return status
