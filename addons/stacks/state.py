"""Persisted per-stack state (deployed, good and bad revisions, hashes, toggle) and revision history."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.store import Store

MIGRATIONS: list[str] = [
    """
    CREATE TABLE stack_state (
        name TEXT PRIMARY KEY,
        project TEXT,
        deployed_revision TEXT,
        good_revision TEXT,
        render_hash TEXT,
        inputs_hash TEXT,
        config_hashes TEXT NOT NULL DEFAULT '{}',
        snapshot TEXT,
        auto_deploy INTEGER,
        health TEXT NOT NULL DEFAULT 'unknown',
        drift TEXT,
        last_run_id INTEGER,
        last_dry_run_id INTEGER,
        updated REAL NOT NULL
    );
    CREATE TABLE stack_bad_revisions (
        stack TEXT NOT NULL,
        revision TEXT NOT NULL,
        inputs_hash TEXT,
        run_id INTEGER,
        error TEXT NOT NULL DEFAULT '',
        time REAL NOT NULL,
        PRIMARY KEY (stack, revision)
    );
    CREATE TABLE stack_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stack TEXT NOT NULL,
        revision TEXT NOT NULL,
        run_id INTEGER,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        snapshot TEXT,
        time REAL NOT NULL
    );
    CREATE INDEX stack_history_stack ON stack_history (stack, id);
    """,
    # What the stack should be doing: running, or stopped / down by a person (lifecycle actions).
    "ALTER TABLE stack_state ADD COLUMN desired TEXT NOT NULL DEFAULT 'running'",
    # The engine the stack runs on (a config edit never moves it; `stacks.move` does) and how: compose | swarm.
    "ALTER TABLE stack_state ADD COLUMN engine TEXT; ALTER TABLE stack_state ADD COLUMN mode TEXT",
]

_COLUMNS = ("project", "deployed_revision", "good_revision", "render_hash", "inputs_hash", "config_hashes",
            "snapshot", "auto_deploy", "health", "drift", "last_run_id", "last_dry_run_id", "desired",
            "engine", "mode")


@dataclass
class StackState:
    """What Dockmaster knows about one stack between runs."""

    name: str
    project: str | None = None
    deployed_revision: str | None = None
    good_revision: str | None = None
    render_hash: str | None = None
    inputs_hash: str | None = None
    config_hashes: dict[str, str] = field(default_factory=dict)
    snapshot: str | None = None
    auto_deploy: bool | None = None
    health: str = "unknown"
    drift: str | None = None
    last_run_id: int | None = None
    last_dry_run_id: int | None = None
    desired: str = "running"  # running | stopped | down
    engine: str | None = None  # where it runs (None: never deployed, or deployed before engines existed: local)
    mode: str | None = None  # compose | swarm, as deployed
    bad: dict[str, dict[str, Any]] = field(default_factory=dict)


class StateStore:
    """Reads and writes stack state through the appliance store (writes are batched)."""

    def __init__(self, store: Store) -> None:
        """Bind the appliance store."""
        self.store = store
        self.states: dict[str, StackState] = {}

    async def async_load(self) -> None:
        """Apply migrations and load every stack's state into memory."""
        await self.store.async_migrate("stacks", MIGRATIONS)
        for row in await self.store.fetchall("SELECT * FROM stack_state"):
            data = {key: row[key] for key in _COLUMNS}
            data["config_hashes"] = json.loads(data["config_hashes"] or "{}")
            data["auto_deploy"] = None if data["auto_deploy"] is None else bool(data["auto_deploy"])
            self.states[row["name"]] = StackState(name=row["name"], **data)
        for row in await self.store.fetchall("SELECT * FROM stack_bad_revisions"):
            state = self.get(row["stack"])
            state.bad[row["revision"]] = {"inputs_hash": row["inputs_hash"], "run_id": row["run_id"],
                                          "error": row["error"], "time": row["time"]}

    def get(self, name: str) -> StackState:
        """The state of a stack (a fresh one when it was never deployed)."""
        if name not in self.states:
            self.states[name] = StackState(name=name)
        return self.states[name]

    async def async_save(self, state: StackState) -> None:
        """Persist a stack's state and wait for the commit."""
        values = [getattr(state, key) for key in _COLUMNS]
        values[_COLUMNS.index("config_hashes")] = json.dumps(state.config_hashes, sort_keys=True)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{key} = excluded.{key}" for key in _COLUMNS)
        # Column names are the fixed tuple above; every value is a bound parameter.
        await self.store.execute(
            f"INSERT INTO stack_state (name, {', '.join(_COLUMNS)}, updated) VALUES (?, {placeholders}, ?) "  # noqa: S608
            f"ON CONFLICT(name) DO UPDATE SET {updates}, updated = excluded.updated",
            (state.name, *values, time.time()),
        )

    async def async_mark_bad(self, state: StackState, revision: str, *, inputs_hash: str | None,
                             run_id: int | None, error: str) -> None:
        """Remember a revision that failed so automatic triggers do not retry it."""
        state.bad[revision] = {"inputs_hash": inputs_hash, "run_id": run_id, "error": error, "time": time.time()}
        await self.store.execute(
            "INSERT OR REPLACE INTO stack_bad_revisions (stack, revision, inputs_hash, run_id, error, time) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (state.name, revision, inputs_hash, run_id, error, time.time()),
        )

    async def async_clear_bad(self, state: StackState, revision: str) -> None:
        """Forget a bad mark (after a manual deploy of that revision succeeded)."""
        if state.bad.pop(revision, None) is not None:
            await self.store.execute("DELETE FROM stack_bad_revisions WHERE stack = ? AND revision = ?",
                                     (state.name, revision))

    async def async_add_history(self, stack: str, revision: str, *, run_id: int | None, kind: str,
                                outcome: str, reason: str, message: str = "", snapshot: str | None = None) -> None:
        """Append one line to a stack's revision history."""
        await self.store.execute(
            "INSERT INTO stack_history (stack, revision, run_id, kind, outcome, reason, message, snapshot, time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (stack, revision, run_id, kind, outcome, reason, message, snapshot, time.time()),
        )

    async def async_history(self, stack: str, limit: int = 50) -> list[dict[str, Any]]:
        """A stack's revision history, newest first."""
        return await self.store.fetchall(
            "SELECT * FROM stack_history WHERE stack = ? ORDER BY id DESC LIMIT ?", (stack, limit)
        )

    async def async_good_snapshots(self, stack: str) -> list[dict[str, Any]]:
        """History rows of good deploys that kept a snapshot, newest first."""
        return await self.store.fetchall(
            "SELECT * FROM stack_history WHERE stack = ? AND outcome = 'good' AND snapshot IS NOT NULL "
            "ORDER BY id DESC", (stack,)
        )

    async def async_forget_snapshot(self, snapshot: str) -> None:
        """Drop a pruned snapshot's path from history rows."""
        await self.store.execute("UPDATE stack_history SET snapshot = NULL WHERE snapshot = ?", (snapshot,))
