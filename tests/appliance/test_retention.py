"""Retention: runs, audit rows, events and delivery logs pruned by age and count; the size on the dashboard."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from addons.webhooks.history import DeliveryLog, DeliveryRecord
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY
from appliance.retention import PruneRule, Retention
from appliance.store import Store
from tests.conftest import bearer, sign_in

DAY = 86400.0


@pytest.fixture
def make_app(aiohttp_client: Any, write_config: Callable[..., Path]) -> Callable[..., Awaitable[TestClient]]:
    """The real app with a `dockmaster.retention` block."""

    async def _make(retention: dict[str, Any]) -> TestClient:
        path = write_config()
        data = yaml.safe_load(path.read_text())
        data["dockmaster"]["retention"] = retention
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return await aiohttp_client(await create_app(path))

    return _make


async def _finished_runs(app: Any, prefix: str, count: int) -> list[int]:
    ids = []
    for i in range(count):
        async with app.runs.track("deploy", f"{prefix}{i}", trigger="api", reason="test") as run:
            ids.append(run.id)
    await app.store.flush()
    return ids


async def test_rows_older_than_a_day_are_gone_after_the_next_prune(make_app) -> None:
    client = await make_app({"runs": "1d", "audit": "1d", "events": "1d"})
    app = client.app[APPLIANCE_KEY]
    store = app.store
    old = await _finished_runs(app, "old", 3)
    waiting = await app.runs.create("deploy", "waiting", trigger="api", reason="queued long ago")
    new = await _finished_runs(app, "new", 3)
    for i in range(4):
        store.audit("user:admin", f"action{i}")
        store.record_event("test_event", {"n": i})
    await store.flush()
    two_days_ago = time.time() - 2 * DAY
    marks = ",".join("?" * len(old))
    await store.execute(f"UPDATE runs SET created = ?, finished = ? WHERE id IN ({marks})",
                        (two_days_ago, two_days_ago, *old))
    await store.execute("UPDATE runs SET created = ? WHERE id = ?", (two_days_ago, waiting.id))
    await store.execute("UPDATE audit SET time = ? WHERE action IN ('action0', 'action1')", (two_days_ago,))
    await store.execute("UPDATE events SET time = ? WHERE type = 'test_event' AND id IN "
                        "(SELECT id FROM events WHERE type = 'test_event' ORDER BY id LIMIT 2)", (two_days_ago,))

    removed = await app.retention.async_prune()
    assert removed["runs"] == 3 and removed["audit"] == 2 and removed["events"] == 2
    ids = {r["id"] for r in await store.fetchall("SELECT id FROM runs")}
    assert ids == {waiting.id, *new}  # a run still in flight is never pruned
    assert [r["action"] for r in await store.fetchall("SELECT action FROM audit WHERE action LIKE 'action%'")] \
        == ["action2", "action3"]
    assert (await store.fetchone("SELECT COUNT(*) AS n FROM events WHERE type = 'test_event'"))["n"] == 2

    listed = await (await client.get("/api/v1/runs", headers=bearer("read"))).json()
    assert [r["id"] for r in listed["runs"]][:3] == sorted(new, reverse=True)
    await sign_in(client)
    page = await (await client.get("/runs")).text()
    assert all(f"new{i}" in page for i in range(3)) and "old0" not in page


async def test_only_the_newest_rows_are_kept_past_the_count(make_app) -> None:
    client = await make_app({"max_runs": 3})
    app = client.app[APPLIANCE_KEY]
    ids = await _finished_runs(app, "run", 7)
    assert (await app.retention.async_prune())["runs"] == 4
    assert [r["id"] for r in await app.runs.list()] == sorted(ids, reverse=True)[:3]


async def test_delivery_logs_follow_the_deliveries_retention(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    await store.async_open()
    log = DeliveryLog(store)
    await log.async_load()
    retention = Retention(store, {"deliveries": "1d"})
    retention.register(PruneRule("deliveries", "webhook_deliveries"))
    log.record(DeliveryRecord("infra", "github", "accepted", 202, time=time.time() - 3 * DAY))
    log.record(DeliveryRecord("infra", "github", "accepted", 202, delivery_id="fresh"))
    await store.flush()
    assert (await retention.async_prune())["webhook_deliveries"] == 1
    assert [r["delivery_id"] for r in await log.async_recent("infra")] == ["fresh"]
    await store.async_close()


async def test_prune_deletes_in_chunks_until_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("appliance.retention.CHUNK", 100)
    store = Store(tmp_path / "db.sqlite")
    await store.async_open()
    old = time.time() - 10 * DAY
    store.enqueue_many("INSERT INTO events (time, type, data) VALUES (?, 'e', '{}')", [(old,)] * 1050)
    await store.flush()
    retention = Retention(store, {"events": "1d"})
    assert (await retention.async_prune())["events"] == 1050
    assert await store.fetchall("SELECT id FROM events") == []
    await store.async_close()


async def test_the_database_size_is_on_the_dashboard_and_in_the_status(make_app) -> None:
    client = await make_app({})
    status = await (await client.get("/api/v1/status", headers=bearer("read"))).json()
    assert status["database"]["bytes"] > 0
    await sign_in(client)
    page = await (await client.get("/")).text()
    assert "Database" in page and 'id="database-size"' in page and "MiB" in page
