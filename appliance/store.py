"""SQLite history (aiosqlite, WAL): versioned migrations and batched writes on one writer task."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

CORE_MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        trigger TEXT NOT NULL,
        actor TEXT,
        reason TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        error TEXT,
        log TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX runs_kind_target ON runs (kind, target, id);
    CREATE INDEX runs_status ON runs (status);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        source TEXT,
        outcome TEXT NOT NULL DEFAULT 'ok',
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_type ON events (type, id);
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    """,
    """
    CREATE TABLE sessions (
        key TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        kind TEXT NOT NULL,
        cred TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        last_seen REAL NOT NULL
    );
    CREATE INDEX runs_finished ON runs (finished);
    CREATE INDEX audit_time ON audit (time);
    CREATE INDEX events_time ON events (time);
    """,
]


@dataclass
class _Write:
    sql: str
    params: Sequence[Any] | Iterable[Sequence[Any]]
    many: bool = False
    future: asyncio.Future[int | None] | None = None


@dataclass
class StoreStats:
    """Counters for metrics and benchmarks."""

    writes: int = 0
    batches: int = 0
    largest_batch: int = 0
    pending: int = 0
    timings: list[float] = field(default_factory=list)


class Store:
    """One writer thread fed by a queue (batched transactions) and one reader connection."""

    def __init__(self, path: Path, *, batch_delay: float = 0.05, batch_max: int = 2000) -> None:
        """Prepare a store at `path`; call `async_open()` before use."""
        self.path = Path(path)
        self._batch_delay = batch_delay
        self._batch_max = batch_max
        # The writer is a plain sqlite3 connection owned by one thread: a whole batch runs there in
        # one hop, instead of one hop to a connection thread per statement.
        self._writer: sqlite3.Connection | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._migrations: dict[str, list[str]] = {"core": CORE_MIGRATIONS}
        self.stats = StoreStats()
        self.size_bytes = 0

    async def _in_writer(self, func: Callable[..., _T], *args: Any) -> _T:
        assert self._write_thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._write_thread, func, *args)

    async def async_open(self) -> None:
        """Open both connections, switch to WAL and apply the core migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._writer = await self._in_writer(self._open_writer)
        await self._apply_migrations("core", CORE_MIGRATIONS)
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA busy_timeout=5000")
        self._task = asyncio.create_task(self._writer_loop(), name="store-writer")
        await self.async_size()

    def _open_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (domain TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        return conn

    async def async_close(self) -> None:
        """Flush pending writes and close."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._in_writer(self._writer.close)
        if self._write_thread is not None:
            self._write_thread.shutdown(wait=True)
        self._reader = self._writer = self._write_thread = None

    async def async_migrate(self, domain: str, migrations: list[str]) -> None:
        """Apply an addon's migrations in order; each list index is one schema version."""
        self._migrations[domain] = migrations
        await self.flush()
        await self._apply_migrations(domain, migrations)

    async def _apply_migrations(self, domain: str, migrations: list[str]) -> None:
        await self._in_writer(self._migrate_sync, domain, migrations)

    def _migrate_sync(self, domain: str, migrations: list[str]) -> None:
        conn = self._writer
        assert conn is not None
        row = conn.execute("SELECT version FROM schema_version WHERE domain = ?", (domain,)).fetchone()
        current = row[0] if row else 0
        if current > len(migrations):
            raise RuntimeError(
                f"the {domain} store schema is version {current}, newer than this Dockmaster knows "
                f"({len(migrations)}); upgrade Dockmaster or restore an older database"
            )
        for version, script in enumerate(migrations[current:], start=current + 1):
            _LOGGER.info("Migrating %s store schema to version %d", domain, version)
            # One transaction per version: the script and its version number land together or not at all.
            try:
                conn.executescript(f"BEGIN; {script};")
                conn.execute(
                    "INSERT INTO schema_version (domain, version) VALUES (?, ?) "
                    "ON CONFLICT(domain) DO UPDATE SET version = excluded.version",
                    (domain, version),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # --- writes -------------------------------------------------------------------------

    def enqueue(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue a write for the next batch without waiting for it."""
        self.stats.pending += 1
        self._queue.put_nowait(_Write(sql, params))

    def enqueue_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Queue an executemany for the next batch."""
        self.stats.pending += 1
        self._queue.put_nowait(_Write(sql, list(rows), many=True))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """Queue a write and wait until it is committed; returns the row id it inserted."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.stats.pending += 1
        self._queue.put_nowait(_Write(sql, params, future=future))
        return await future

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if self._task is None:
            return
        await self.execute("SELECT 1")

    async def _writer_loop(self) -> None:
        stop = False
        while not stop:
            item = await self._queue.get()
            batch: list[_Write] = []
            if item is None:
                stop = True
            else:
                batch.append(item)
                if item.future is None:
                    # Give a burst of fire-and-forget writes a moment to join the batch.
                    await asyncio.sleep(self._batch_delay)
            while len(batch) < self._batch_max and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Write]) -> None:
        started = time.perf_counter()
        results = await self._in_writer(self._commit_sync, batch)
        self.stats.writes += len(batch)
        self.stats.pending -= len(batch)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        self.stats.timings.append(time.perf_counter() - started)
        del self.stats.timings[:-100]
        for write, (rowid, error) in zip(batch, results, strict=True):
            if write.future is not None and not write.future.done():
                if error is not None:
                    write.future.set_exception(error)
                else:
                    write.future.set_result(rowid)

    def _commit_sync(self, batch: list[_Write]) -> list[tuple[int | None, BaseException | None]]:
        """Run a batch in one transaction (in the writer thread); one bad statement fails alone."""
        conn = self._writer
        assert conn is not None
        results: list[tuple[int | None, BaseException | None]] = []
        try:
            conn.execute("BEGIN")
            for write in batch:
                try:
                    if write.many:
                        conn.executemany(write.sql, write.params)
                        results.append((None, None))
                    else:
                        cursor = conn.execute(write.sql, write.params)  # type: ignore[arg-type]
                        results.append((cursor.lastrowid, None))
                except Exception as err:  # one bad statement must not lose the batch
                    _LOGGER.error("Store write failed: %s (%s)", err, write.sql.split()[0])
                    results.append((None, err))
            conn.execute("COMMIT")
        except Exception as err:
            _LOGGER.exception("Store batch failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(None, err) for _ in batch]
        return results

    # --- retention ----------------------------------------------------------------------

    async def async_prune(self, table: str, time_column: str, cutoff: float, max_rows: int,
                          keep_where: str = "", chunk: int = 2000) -> int:
        """Delete rows dated before `cutoff` or past the newest `max_rows`, in short writer transactions.

        `table`, `time_column` and `keep_where` come from code, never from input. Each chunk is its
        own transaction in the writer thread, so batched writes go on between chunks and readers
        (WAL) are never blocked.
        """
        row = await self.fetchone(f"SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?",  # noqa: S608
                                  (max_rows,))
        past_count = int(row["id"]) if row else 0
        guard = f"NOT ({keep_where})" if keep_where else "1"
        sql = (f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
               f"WHERE ({time_column} < ? OR id <= ?) AND {guard} LIMIT ?)")
        total = 0
        while True:
            removed = await self._in_writer(self._delete_sync, sql, (cutoff, past_count, chunk))
            total += removed
            if removed < chunk:
                return total

    def _delete_sync(self, sql: str, params: Sequence[Any]) -> int:
        conn = self._writer
        assert conn is not None
        conn.execute("BEGIN")
        try:
            removed = conn.execute(sql, params).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(removed)

    async def async_size(self) -> int:
        """The database's size on disk (main file and write-ahead log), also kept in `size_bytes`."""
        self.size_bytes = await asyncio.get_running_loop().run_in_executor(None, self._size_sync)
        return self.size_bytes

    def _size_sync(self) -> int:
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    # --- reads --------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read query on the reader connection."""
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """Run a read query and return its first row."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    # --- small helpers used across addons -----------------------------------------------

    async def kv_get(self, namespace: str, key: str, default: Any = None) -> Any:
        """Read a JSON value persisted with `kv_set`."""
        row = await self.fetchone("SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        return json.loads(row["value"]) if row else default

    async def kv_all(self, namespace: str) -> dict[str, Any]:
        """Read every value of a namespace."""
        rows = await self.fetchall("SELECT key, value FROM kv WHERE namespace = ?", (namespace,))
        return {row["key"]: json.loads(row["value"]) for row in rows}

    async def kv_set(self, namespace: str, key: str, value: Any) -> None:
        """Persist a JSON value and wait for the commit."""
        await self.execute(
            "INSERT INTO kv (namespace, key, value, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (namespace, key, json.dumps(value), time.time()),
        )

    def audit(
        self,
        actor: str,
        action: str,
        target: str = "",
        *,
        source: str | None = None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record who did what; never pass secrets in `details`."""
        self.enqueue(
            "INSERT INTO audit (time, actor, action, target, source, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), actor, action, target, source, outcome, json.dumps(details or {}, default=str)),
        )

    def record_event(self, event_type: str, data: dict[str, Any]) -> None:
        """Append an event to history."""
        self.enqueue(
            "INSERT INTO events (time, type, data) VALUES (?, ?, ?)",
            (data.get("time", time.time()), event_type, json.dumps(data, default=str)),
        )

    async def mark_interrupted(self) -> int:
        """On start: runs left `running` or `queued` by a crash become `interrupted`."""
        before = await self.fetchone(
            "SELECT COUNT(*) AS n FROM runs WHERE status IN ('running', 'queued')"
        )
        await self.execute(
            "UPDATE runs SET status = 'interrupted', finished = ?, "
            "error = COALESCE(error, 'the process stopped while this run was in progress') "
            "WHERE status IN ('running', 'queued')",
            (time.time(),),
        )
        return int(before["n"]) if before else 0
