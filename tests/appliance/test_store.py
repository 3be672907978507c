"""The store: WAL mode, versioned migrations, batched writes, and interrupted runs after a crash."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.store import CORE_MIGRATIONS, Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = Store(tmp_path / "dm.db")
    await db.async_open()
    yield db
    await db.async_close()


async def test_wal_mode_is_on(store: Store) -> None:
    row = await store.fetchone("PRAGMA journal_mode")
    assert row is not None and row["journal_mode"] == "wal"
    assert (store.path.parent / "dm.db-wal").exists()


async def test_core_schema_is_versioned(store: Store) -> None:
    rows = await store.fetchall("SELECT domain, version FROM schema_version")
    assert rows == [{"domain": "core", "version": len(CORE_MIGRATIONS)}]
    tables = {r["name"] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "audit", "events", "kv", "sessions", "schema_version"} <= tables


async def test_addon_migrations_apply_once_in_order(tmp_path: Path) -> None:
    v1 = "CREATE TABLE demo (id INTEGER PRIMARY KEY, name TEXT)"
    v2 = "ALTER TABLE demo ADD COLUMN colour TEXT; CREATE INDEX demo_name ON demo (name)"
    db = Store(tmp_path / "dm.db")
    await db.async_open()
    await db.async_migrate("demo", [v1])
    await db.execute("INSERT INTO demo (name) VALUES (?)", ("kept",))
    await db.async_close()

    db = Store(tmp_path / "dm.db")
    await db.async_open()
    await db.async_migrate("demo", [v1, v2])  # v1 must not run again (it would fail: table exists)
    await db.execute("INSERT INTO demo (name, colour) VALUES (?, ?)", ("new", "blue"))
    assert await db.fetchall("SELECT name, colour FROM demo ORDER BY id") == [
        {"name": "kept", "colour": None}, {"name": "new", "colour": "blue"},
    ]
    assert await db.fetchone("SELECT version FROM schema_version WHERE domain = 'demo'") == {"version": 2}
    await db.async_close()


async def test_failed_migration_changes_nothing(store: Store) -> None:
    good = "CREATE TABLE half (id INTEGER PRIMARY KEY)"
    bad = "CREATE TABLE other (id INTEGER PRIMARY KEY); INSERT INTO missing VALUES (1)"
    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        await store.async_migrate("broken", [good, bad])
    assert await store.fetchone("SELECT version FROM schema_version WHERE domain = 'broken'") == {"version": 1}
    tables = {r["name"] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half" in tables and "other" not in tables
    # The writer is still usable after the rollback.
    await store.execute("INSERT INTO half (id) VALUES (1)")
    assert await store.fetchone("SELECT COUNT(*) AS n FROM half") == {"n": 1}


async def test_database_newer_than_the_code_is_refused(store: Store) -> None:
    await store.async_migrate("demo", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
    with pytest.raises(RuntimeError, match="schema is version 2, newer than this Dockmaster knows"):
        await store.async_migrate("demo", ["CREATE TABLE a (x)"])


async def test_writes_are_batched(store: Store) -> None:
    for i in range(5000):
        store.record_event("test", {"i": i})
    await store.flush()
    assert await store.fetchone("SELECT COUNT(*) AS n FROM events") == {"n": 5000}
    assert store.stats.pending == 0
    assert store.stats.batches <= 10
    assert store.stats.largest_batch >= 1000


async def test_one_bad_write_does_not_lose_the_batch(store: Store) -> None:
    store.enqueue("INSERT INTO kv (namespace, key, value, updated) VALUES ('a', '1', '1', 0)")
    store.enqueue("INSERT INTO nowhere VALUES (1)")
    store.enqueue("INSERT INTO kv (namespace, key, value, updated) VALUES ('a', '2', '2', 0)")
    with pytest.raises(sqlite3.OperationalError):
        await store.execute("INSERT INTO nowhere VALUES (2)")
    assert await store.kv_all("a") == {"1": 1, "2": 2}


async def test_execute_returns_the_row_id_and_kv_roundtrip(store: Store) -> None:
    first = await store.execute(
        "INSERT INTO audit (time, actor, action) VALUES (0, 'user:a', 'x')"
    )
    second = await store.execute(
        "INSERT INTO audit (time, actor, action) VALUES (0, 'user:a', 'y')"
    )
    assert (first, second) == (1, 2)
    await store.kv_set("stacks", "traefik", {"auto_deploy": False, "n": [1, 2]})
    assert await store.kv_get("stacks", "traefik") == {"auto_deploy": False, "n": [1, 2]}
    assert await store.kv_get("stacks", "missing", "dflt") == "dflt"


async def test_mark_interrupted_after_a_crash(tmp_path: Path) -> None:
    db = Store(tmp_path / "dm.db")
    await db.async_open()
    for status in ("running", "queued", "succeeded", "failed", "running"):
        await db.execute(
            "INSERT INTO runs (kind, target, trigger, reason, status, created) VALUES ('deploy', 'x', 'api', '', ?, 0)",
            (status,),
        )
    await db.async_close()  # as if the process died: nothing finished them

    db = Store(tmp_path / "dm.db")
    await db.async_open()
    assert await db.mark_interrupted() == 3
    rows = await db.fetchall("SELECT id, status, error, finished FROM runs ORDER BY id")
    assert [r["status"] for r in rows] == ["interrupted", "interrupted", "succeeded", "failed", "interrupted"]
    assert rows[0]["error"] == "the process stopped while this run was in progress"
    assert rows[0]["finished"] is not None and rows[2]["finished"] is None
    assert await db.mark_interrupted() == 0
    await db.async_close()


async def test_close_flushes_pending_writes(tmp_path: Path) -> None:
    db = Store(tmp_path / "dm.db")
    await db.async_open()
    for i in range(100):
        db.audit("user:a", "test", str(i))
    await db.async_close()
    conn = sqlite3.connect(tmp_path / "dm.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM audit").fetchone() == (100,)
    finally:
        conn.close()
