"""The delivery log on a real store: replay keys survive a restart, pruning forgets old ones."""

from __future__ import annotations

import time
from pathlib import Path

from addons.webhooks.history import DeliveryLog, DeliveryRecord
from appliance.store import Store


async def test_replay_keys_survive_restart_and_expire(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    await store.async_open()
    log = DeliveryLog(store)
    await log.async_load()
    assert log.check_and_mark(["id:infra:github:a", "body:infra:1"])
    assert not log.check_and_mark(["id:infra:github:a", "body:infra:2"])  # same id, other body
    assert not log.check_and_mark(["id:infra:github:b", "body:infra:1"])  # same body, other id
    log.persist("infra", ["id:infra:github:a", "body:infra:1"])
    log.record(DeliveryRecord("infra", "github", "accepted", 202, delivery_id="a", event="push", branch="main",
                              commit="ab" * 20, run_id=7, detail="sync requested"))
    await store.async_close()

    store = Store(tmp_path / "db.sqlite")
    await store.async_open()
    log = DeliveryLog(store)
    await log.async_load()
    assert not log.check_and_mark(["id:infra:github:a"])
    [row] = await log.async_recent("infra")
    assert (row["delivery_id"], row["outcome"], row["run_id"], row["commit"]) == ("a", "accepted", 7, "ab" * 20)

    # A key older than the window no longer counts, and pruning removes it from disk.
    await store.execute("UPDATE webhook_seen SET time = ?", (time.time() - 8 * 86400,))
    log = DeliveryLog(store)
    await log.async_load()
    assert log.check_and_mark(["id:infra:github:a"])
    await log.async_prune()
    assert await store.fetchall("SELECT key FROM webhook_seen") == []
    await store.async_close()


async def test_forget_lets_a_retry_through(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    await store.async_open()
    log = DeliveryLog(store)
    await log.async_load()
    keys = ["id:infra:gitea:x"]
    assert log.check_and_mark(keys)
    log.forget(keys)
    assert log.check_and_mark(keys)
    await store.async_close()
