"""Runs: rows with a reason and status, a capped log with a marker, secrets redacted from logs and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.bus import EventBus
from appliance.const import RUN_LOG_CAP
from appliance.events import Event
from appliance.runs import Redactor, RunManager
from appliance.store import Store
from tests.conftest import bearer


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunManager]:
    store = Store(tmp_path / "dm.db")
    await store.async_open()
    redactor = Redactor()
    redactor.add("s3cr3t-global-token", "abc")  # values under 4 characters are ignored
    yield RunManager(store, EventBus(), redactor)
    await store.async_close()


async def test_track_success_and_events(manager: RunManager) -> None:
    seen: list[Event] = []
    manager.bus.async_listen("*", seen.append)
    async with manager.track(
        "deploy", "web", trigger="manual", reason="deploy requested by user:admin", actor="user:admin"
    ) as run:
        run.log("pulling images")
        assert run.status == "running"
    row = await manager.get(run.id)
    assert row is not None
    assert row["status"] == "succeeded"
    assert row["reason"] == "deploy requested by user:admin"
    assert row["log"].endswith("pulling images")
    assert [e.type for e in seen] == ["run_started", "run_log", "run_finished"]
    assert run.id not in manager.active


async def test_track_failure_keeps_the_error(manager: RunManager) -> None:
    with pytest.raises(RuntimeError):
        async with manager.track("deploy", "web", trigger="api", reason="r") as run:
            raise RuntimeError("compose up failed")
    row = await manager.get(run.id)
    assert row is not None and row["status"] == "failed" and row["error"] == "compose up failed"
    assert "error: compose up failed" in row["log"]


async def test_track_cancel_marks_cancelled(manager: RunManager) -> None:
    started = asyncio.Event()
    run_ids: list[int] = []

    async def work() -> None:
        async with manager.track("check", "h1", trigger="schedule", reason="r") as run:
            run_ids.append(run.id)
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await manager.get(run_ids[0])
    assert row is not None and row["status"] == "cancelled"


async def test_queued_run_then_started(manager: RunManager) -> None:
    run = await manager.create("update", "h1", trigger="schedule", reason="waiting for window nightly")
    assert (await manager.list())[0]["status"] == "queued"
    async with manager.track("update", "h1", trigger="schedule", reason="", run=run):
        assert (await manager.list())[0]["status"] == "running"
    assert (await manager.list(status="succeeded"))[0]["id"] == run.id


async def test_log_is_capped_with_a_marker_and_keeps_the_newest_lines(manager: RunManager) -> None:
    async with manager.track("deploy", "big", trigger="manual", reason="r") as run:
        for i in range(6000):
            run.log(f"line {i:05d} " + "x" * 80)
    row = await manager.get(run.id)
    assert row is not None
    lines = row["log"].splitlines()
    assert lines[0] == "[... earlier lines dropped: log over its size cap ...]"
    assert lines[-1].endswith("line 05999 " + "x" * 80)
    assert "line 00000" not in row["log"]
    assert len(row["log"].encode()) <= RUN_LOG_CAP
    assert len(row["log"].encode()) > RUN_LOG_CAP * 0.9  # trimmed a little under the cap, not emptied
    assert lines.count(lines[0]) == 1


async def test_secrets_are_redacted_from_logs_errors_and_storage(manager: RunManager) -> None:
    with pytest.raises(RuntimeError):
        async with manager.track("deploy", "web", trigger="api", reason="r") as run:
            run.secrets.add("per-run-password")
            run.log("login with s3cr3t-global-token")
            run.log("echo per-run-password | docker login --password-stdin")
            run.log("abc is too short to be a secret")
            raise RuntimeError("auth failed for token s3cr3t-global-token / per-run-password")
    row = await manager.get(run.id)
    assert row is not None
    for text in (row["log"], row["error"]):
        assert "s3cr3t-global-token" not in text
        assert "per-run-password" not in text
    assert "login with ***" in row["log"]
    assert "abc is too short" in row["log"]
    assert row["error"] == "auth failed for token *** / ***"
    stored = await manager.store.fetchone("SELECT log, error FROM runs WHERE id = ?", (run.id,))
    assert stored is not None and "s3cr3t" not in stored["log"] + stored["error"]


async def test_live_log_is_persisted_while_running(manager: RunManager) -> None:
    run = await manager.create("deploy", "web", trigger="api", reason="r", status="running")
    run.log("step one")
    for _ in range(40):
        await asyncio.sleep(0.1)
        stored = await manager.store.fetchone("SELECT log FROM runs WHERE id = ?", (run.id,))
        if stored and "step one" in stored["log"]:
            break
    else:
        pytest.fail("the live log was not persisted within 4 s")
    await manager.finish(run, "succeeded")


async def test_list_filters_and_pages(manager: RunManager) -> None:
    for i in range(5):
        run = await manager.create("deploy" if i % 2 else "sync", f"t{i}", trigger="api", reason="r")
        await manager.finish(run, "succeeded" if i < 4 else "failed")
    assert [r["target"] for r in await manager.list(kind="deploy")] == ["t3", "t1"]
    assert [r["target"] for r in await manager.list(status="failed")] == ["t4"]
    page = await manager.list(limit=2)
    assert [r["target"] for r in page] == ["t4", "t3"]
    assert [r["target"] for r in await manager.list(limit=2, before=page[-1]["id"])] == ["t2", "t1"]


async def test_runs_api_filters_pages_and_404(make_client) -> None:
    client = await make_client()
    from appliance.keys import APPLIANCE_KEY

    app = client.app[APPLIANCE_KEY]
    for i in range(3):
        run = await app.runs.create("sync", f"repo{i}", trigger="poll", reason="poll found new commits")
        await app.runs.finish(run, "succeeded")
    data = await (await client.get("/api/v1/runs?limit=2", headers=bearer("read"))).json()
    assert [r["target"] for r in data["runs"]] == ["repo2", "repo1"]
    assert data["next_before"] == data["runs"][-1]["id"]
    data = await (await client.get(f"/api/v1/runs?before={data['next_before']}", headers=bearer("read"))).json()
    assert [r["target"] for r in data["runs"]] == ["repo0"] and data["next_before"] is None
    data = await (await client.get("/api/v1/runs?target=repo1&status=succeeded&kind=sync",
                                   headers=bearer("read"))).json()
    assert len(data["runs"]) == 1
    one = await (await client.get(f"/api/v1/runs/{run.id}", headers=bearer("read"))).json()
    assert one["target"] == "repo2" and "log" in one
    assert (await client.get("/api/v1/runs/999", headers=bearer("read"))).status == 404
    assert (await client.get("/api/v1/runs/abc", headers=bearer("read"))).status == 404


async def test_a_huge_single_line_is_clipped(manager: RunManager) -> None:
    async with manager.track("deploy", "blob", trigger="manual", reason="r") as run:
        run.log("y" * (RUN_LOG_CAP * 2))
    row = await manager.get(run.id)
    assert row is not None
    assert len(row["log"]) < 20_000
    assert row["log"].endswith(f"[... {RUN_LOG_CAP * 2 - 16 * 1024 + 9} characters cut]")
