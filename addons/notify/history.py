"""Delivery records: one row per message per target (outcome, attempts, error), never a URL."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from appliance.store import Store

from .pending import TABLE_SQL as PENDING_TABLE_SQL

MIGRATIONS: list[str] = [
    """
    CREATE TABLE notify_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        target TEXT NOT NULL,
        event TEXT NOT NULL,
        key TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        severity TEXT NOT NULL DEFAULT 'info',
        outcome TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        duration REAL
    );
    CREATE INDEX notify_deliveries_target ON notify_deliveries (target, id);
    """,
    # Retention (dockmaster.retention.deliveries) prunes by time.
    "CREATE INDEX notify_deliveries_time ON notify_deliveries (time)",
    # Quiet-hours holds and fold counters outlive a restart (see `pending`).
    PENDING_TABLE_SQL,
]

# sent: every URL took it; partial: some did; failed: none did; dropped: the target's queue was full.
OUTCOMES = ("sent", "partial", "failed", "dropped")


@dataclass
class Delivery:
    """The outcome of one message to one target."""

    target: str
    event: str
    key: str
    title: str
    severity: str
    outcome: str
    attempts: int
    error: str | None = None
    duration: float | None = None
    time: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return asdict(self)


class DeliveryLog:
    """Writes delivery rows through the store's batched writer and reads them back."""

    def __init__(self, store: Store) -> None:
        """Bind the store (migrated by `async_setup`)."""
        self.store = store

    def record(self, delivery: Delivery) -> None:
        """Queue a delivery row without waiting for the commit."""
        delivery.time = delivery.time or time.time()
        self.store.enqueue(
            "INSERT INTO notify_deliveries (time, target, event, key, title, severity, outcome, attempts, "
            "error, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (delivery.time, delivery.target, delivery.event, delivery.key, delivery.title, delivery.severity,
             delivery.outcome, delivery.attempts, delivery.error, delivery.duration),
        )

    async def async_recent(self, *, target: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Deliveries newest first, committed ones included (the write queue is flushed first)."""
        await self.store.flush()
        if target:
            return await self.store.fetchall(
                "SELECT * FROM notify_deliveries WHERE target = ? ORDER BY id DESC LIMIT ?", (target, limit)
            )
        return await self.store.fetchall("SELECT * FROM notify_deliveries ORDER BY id DESC LIMIT ?", (limit,))

    async def async_last_by_target(self) -> dict[str, dict[str, Any]]:
        """The newest delivery of each target."""
        await self.store.flush()
        rows = await self.store.fetchall(
            "SELECT * FROM notify_deliveries WHERE id IN (SELECT MAX(id) FROM notify_deliveries GROUP BY target)"
        )
        return {row["target"]: row for row in rows}
