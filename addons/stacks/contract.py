"""What other addons may use of the stacks addon: the stack catalogue and its events.

Actions (deploy, rollback, stop, start, restart, down, auto_deploy) are services: call them through
`app.services.async_call("stacks.deploy", {...})`, never through these objects.
"""

from __future__ import annotations

from typing import Protocol

from appliance.datakeys import DataKey

from .events import DeployFailed, DeployStarted, DeploySucceeded, DriftDetected, RollbackFailed, RollbackSucceeded

__all__ = ["STACKS", "DeployFailed", "DeployStarted", "DeploySucceeded", "DriftDetected", "RollbackFailed",
           "RollbackSucceeded", "StackCatalog"]


class StackCatalog(Protocol):
    """Read-only facts about the configured stacks."""

    def names(self) -> list[str]:
        """Every configured stack."""

    def window_of(self, name: str) -> str | None:
        """The maintenance window a stack's disruptive work waits for (its `window:`), or None."""

    def health_of(self, name: str) -> str:
        """healthy, unhealthy, failed, stopped, down or unknown."""


STACKS: DataKey[StackCatalog] = DataKey("stacks")
