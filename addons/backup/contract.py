"""What other addons may use of the backup addon: the newest backup and the backup events.

Making a backup is the `backup.create` service: call it through `app.services.async_call`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.datakeys import DataKey

from .events import BackupCreated, BackupFailed

__all__ = ["BACKUPS", "BackupCatalog", "BackupCreated", "BackupFailed", "LastBackup"]


@dataclass(frozen=True)
class LastBackup:
    """The newest archive, and how the latest attempt went (a failure after it keeps the archive)."""

    name: str | None  # the newest archive in the backup folder; None when there is none
    time: float | None  # when it was written (epoch seconds)
    size: int | None
    ok: bool  # False when the latest attempt failed
    error: str | None  # that failure


class BackupCatalog(Protocol):
    """Read-only facts about the appliance's backups."""

    async def async_last(self) -> LastBackup:
        """The newest backup and how the latest attempt went (reads the folder once, then follows the events)."""


BACKUPS: DataKey[BackupCatalog] = DataKey("backup.catalog")
