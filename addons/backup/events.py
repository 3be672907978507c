"""Events of the backup addon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class BackupCreated(Event):
    """A backup archive was written."""

    type: ClassVar[str] = "backup_created"
    backup: str
    size: int
    run_id: int | None = None


@dataclass(kw_only=True)
class BackupFailed(Event):
    """A backup could not be written."""

    type: ClassVar[str] = "backup_failed"
    severity: ClassVar[str] = "critical"
    error: str
    run_id: int | None = None
