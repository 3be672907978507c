"""What a target still owes across a restart: messages held for quiet hours and folds in progress."""

from __future__ import annotations

import json
import time
from typing import Any

from appliance.store import Store

# One row per target; the state is the JSON of `Target.snapshot()`. A target with nothing pending has no row.
TABLE_SQL = """
    CREATE TABLE notify_pending (
        target TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated REAL NOT NULL
    )
"""


class PendingStore:
    """Reads and writes the pending state of the targets; writes go through the store's batched writer."""

    def __init__(self, store: Store) -> None:
        """Bind the store (migrated by `async_setup`)."""
        self.store = store

    async def async_load(self) -> dict[str, dict[str, Any]]:
        """Every target's saved state, by target name."""
        rows = await self.store.fetchall("SELECT target, state FROM notify_pending")
        return {row["target"]: json.loads(row["state"]) for row in rows}

    def save(self, target: str, state: dict[str, Any]) -> None:
        """Queue the state of one target (an empty state removes its row) without waiting."""
        if not state.get("held") and not state.get("folds"):
            self.forget(target)
            return
        self.store.enqueue(
            "INSERT INTO notify_pending (target, state, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(target) DO UPDATE SET state = excluded.state, updated = excluded.updated",
            (target, json.dumps(state), time.time()),
        )

    def forget(self, target: str) -> None:
        """Queue the removal of a target's row."""
        self.store.enqueue("DELETE FROM notify_pending WHERE target = ?", (target,))
