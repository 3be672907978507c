"""Notification messages of the backup addon's events."""

from __future__ import annotations

from typing import Any


def _created(e: Any) -> tuple[str, str, str]:
    return "Backup written", f"{e.backup} ({e.size} bytes).", "{n} more backups were written"


def _failed(e: Any) -> tuple[str, str, str]:
    return "Backup failed", str(e.error), "backups failed {n} more times"


MESSAGES = {"backup_created": _created, "backup_failed": _failed}
SUCCESS = frozenset({"backup_created"})
