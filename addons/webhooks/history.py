"""Delivery history: the deliveries table, the 7-day replay guard and periodic pruning."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from appliance.store import Store

REPLAY_WINDOW = 7 * 86400.0
RECENT = 20

MIGRATIONS = [
    """
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        repo TEXT NOT NULL,
        provider TEXT NOT NULL,
        delivery_id TEXT,
        event TEXT NOT NULL DEFAULT '',
        branch TEXT,
        commit_sha TEXT,
        outcome TEXT NOT NULL,
        status INTEGER NOT NULL,
        run_id INTEGER,
        detail TEXT NOT NULL DEFAULT '',
        source TEXT
    );
    CREATE INDEX webhook_deliveries_repo ON webhook_deliveries (repo, id);
    CREATE TABLE webhook_seen (
        key TEXT PRIMARY KEY,
        repo TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX webhook_seen_time ON webhook_seen (time);
    """,
    # Retention (dockmaster.retention.deliveries) prunes by time.
    "CREATE INDEX webhook_deliveries_time ON webhook_deliveries (time)",
]


@dataclass(slots=True)
class DeliveryRecord:
    """One row of the deliveries table (never holds a secret or a signature)."""

    repo: str
    provider: str
    outcome: str
    status: int
    delivery_id: str | None = None
    event: str = ""
    branch: str | None = None
    commit: str | None = None
    run_id: int | None = None
    detail: str = ""
    source: str | None = None
    time: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as the API and the audit show it."""
        return {
            "time": self.time, "repo": self.repo, "provider": self.provider, "delivery_id": self.delivery_id,
            "event": self.event, "branch": self.branch, "commit": self.commit, "outcome": self.outcome,
            "status": self.status, "run_id": self.run_id, "detail": self.detail,
        }


class DeliveryLog:
    """Records deliveries and remembers verified ones for 7 days so that a replay starts nothing."""

    def __init__(self, store: Store, *, replay_window: float = REPLAY_WINDOW) -> None:
        """Bind the store; call `async_load()` once the migrations ran."""
        self.store = store
        self.replay_window = replay_window
        # In memory so that check-and-mark is one step with no await in between: 100 concurrent
        # copies of a delivery cannot all pass. Persisted for restarts; only verified deliveries land here.
        self._seen: dict[str, float] = {}

    async def async_load(self) -> None:
        """Create the tables and load the keys still inside the replay window."""
        await self.store.async_migrate("webhooks", MIGRATIONS)
        rows = await self.store.fetchall(
            "SELECT key, time FROM webhook_seen WHERE time >= ?", (time.time() - self.replay_window,)
        )
        self._seen = {row["key"]: row["time"] for row in rows}

    def check_and_mark(self, keys: list[str]) -> bool:
        """True (and remembered in memory) when none of `keys` was seen in the window; False for a replay."""
        now = time.time()
        horizon = now - self.replay_window
        if any(self._seen.get(key, 0.0) >= horizon for key in keys):
            return False
        for key in keys:
            self._seen[key] = now
        return True

    def forget(self, keys: list[str]) -> None:
        """Drop keys marked for a delivery that could not be acted on, so a retry can get through."""
        for key in keys:
            self._seen.pop(key, None)

    def persist(self, repo: str, keys: list[str]) -> None:
        """Queue the marked keys for the disk so that replays stay refused after a restart."""
        now = time.time()
        self.store.enqueue_many(
            "INSERT INTO webhook_seen (key, repo, time) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET time = excluded.time",
            [(key, repo, self._seen.get(key, now)) for key in keys],
        )

    def record(self, record: DeliveryRecord) -> None:
        """Queue a delivery row (fire and forget: the answer never waits for the disk)."""
        record.time = record.time or time.time()
        self.store.enqueue(
            "INSERT INTO webhook_deliveries (time, repo, provider, delivery_id, event, branch, commit_sha, "
            "outcome, status, run_id, detail, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.time, record.repo, record.provider, record.delivery_id, record.event, record.branch,
             record.commit, record.outcome, record.status, record.run_id, record.detail, record.source),
        )

    async def async_recent(self, repo: str, limit: int = RECENT) -> list[dict[str, Any]]:
        """The newest deliveries of a repo, newest first."""
        rows = await self.store.fetchall(
            "SELECT time, repo, provider, delivery_id, event, branch, commit_sha, outcome, status, run_id, detail "
            "FROM webhook_deliveries WHERE repo = ? ORDER BY id DESC LIMIT ?",
            (repo, limit),
        )
        for row in rows:
            row["commit"] = row.pop("commit_sha")
        return rows

    async def async_prune(self) -> None:
        """Forget replay keys older than the window (deliveries follow `dockmaster.retention`)."""
        horizon = time.time() - self.replay_window
        self._seen = {key: at for key, at in self._seen.items() if at >= horizon}
        await self.store.execute("DELETE FROM webhook_seen WHERE time < ?", (horizon,))
