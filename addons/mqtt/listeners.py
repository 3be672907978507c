"""Which events change which device's state: the bus marks devices dirty, the bridge publishes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from addons.backup.contract import BackupCreated, BackupFailed
from addons.hosts.contract import (
    HostRebooted,
    HostStateChanged,
    HostUpdateFailed,
    HostUpdateSucceeded,
    RebootRequired,
    UpdatesAvailable,
)
from addons.repos.contract import RepoSynced
from addons.stacks.contract import (
    DeployFailed,
    DeployStarted,
    DeploySucceeded,
    DriftDetected,
    RollbackFailed,
    RollbackSucceeded,
)
from appliance.core import Appliance
from appliance.events import AddonFailed, Event, RunFinished, RunStarted

from .entities import APPLIANCE, HOST, STACK

if TYPE_CHECKING:
    from .bridge import MqttBridge

STACK_EVENTS: tuple[type[Event], ...] = (DeployStarted, DeploySucceeded, DeployFailed, RollbackSucceeded,
                                         RollbackFailed, DriftDetected)
HOST_EVENTS: tuple[type[Event], ...] = (HostStateChanged, UpdatesAvailable, HostUpdateSucceeded, HostUpdateFailed,
                                        RebootRequired, HostRebooted)


def listen(app: Appliance, bridge: MqttBridge) -> None:
    """Mark devices dirty from the events that change them (never poll)."""

    def on_stack(event: Any) -> None:
        bridge.mark(STACK, event.stack)

    def on_host(event: Any) -> None:
        bridge.mark(HOST, event.host)

    def on_run(event: RunStarted | RunFinished) -> None:
        bridge.mark(APPLIANCE)
        if event.target in bridge.stack_names():
            bridge.mark(STACK, event.target)
        elif event.target in bridge.host_names():
            bridge.mark(HOST, event.target)

    def on_repo(_event: RepoSynced) -> None:
        for name in bridge.stack_names():  # a new head may be the newest commit of any stack
            bridge.mark(STACK, name)

    for stack_event in STACK_EVENTS:
        app.bus.async_listen(stack_event, on_stack)
    for host_event in HOST_EVENTS:
        app.bus.async_listen(host_event, on_host)
    app.bus.async_listen(RunStarted, on_run)
    app.bus.async_listen(RunFinished, on_run)
    app.bus.async_listen(RepoSynced, on_repo)
    app.bus.async_listen(AddonFailed, lambda _event: bridge.mark(APPLIANCE))
    for backup_event in (BackupCreated, BackupFailed):
        app.bus.async_listen(backup_event, lambda _event: bridge.mark(APPLIANCE))
