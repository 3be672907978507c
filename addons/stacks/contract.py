"""What other addons may use of the stacks addon: the stack catalogue and its events.

Actions (deploy, rollback, stop, start, restart, down, auto_deploy) are services: call them through
`app.services.async_call("stacks.deploy", {...})`, never through these objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.datakeys import DataKey

from .events import DeployFailed, DeployStarted, DeploySucceeded, DriftDetected, RollbackFailed, RollbackSucceeded

__all__ = ["PENDING_LIMIT", "STACKS", "DeployFailed", "DeployStarted", "DeploySucceeded", "DriftDetected",
           "RollbackFailed", "RollbackSucceeded", "StackCatalog", "StackOverview"]

PENDING_LIMIT = 20


@dataclass(frozen=True)
class StackOverview:
    """One stack as a status display shows it: what runs, what is newest, how the last run went."""

    name: str
    health: str
    auto_deploy: bool
    deployed_revision: str | None
    latest_revision: str | None  # the newest commit that changes this stack (the deployed one when none does)
    latest_subject: str  # that commit's subject ("" when it is the deployed one)
    last_run_kind: str | None
    last_run_status: str | None
    last_run_time: float | None
    last_run_error: str | None
    # The subjects of the commits since the deployed revision that change the stack's folder, newest
    # first (at most PENDING_LIMIT of them), and how many there are in all.
    pending_subjects: tuple[str, ...] = ()
    pending_total: int = 0


class StackCatalog(Protocol):
    """Read-only facts about the configured stacks."""

    def names(self) -> list[str]:
        """Every configured stack."""

    def window_of(self, name: str) -> str | None:
        """The maintenance window a stack's disruptive work waits for (its `window:`), or None."""

    def health_of(self, name: str) -> str:
        """healthy, unhealthy, failed, stopped, down or unknown."""

    def engine_of(self, name: str) -> str:
        """The Docker engine a stack runs on (`local` for a name Dockmaster does not know)."""

    async def async_overview(self, name: str) -> StackOverview:
        """The stack's deployed and newest revision, health, auto_deploy and last run; NotFound when unknown."""


STACKS: DataKey[StackCatalog] = DataKey("stacks")
