"""`kill -9` of `dockmaster run` during a run, then a restart: that run reads `interrupted`."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKENS
from tests.support.daemon import call, free_port
from tests.support.daemon import start as _start


def _call(port: int, method: str, path: str, scope: str = "admin") -> tuple[int, Any]:
    return call(port, method, path, TOKENS[scope])


CRASHY = '''
"""A test addon whose routes start a long run and a short one."""
import asyncio

import voluptuous as vol
from aiohttp import web

DOMAIN = "crashy"
CONFIG_SCHEMA = vol.Schema({})
_TASKS = set()


async def async_setup(app, conf):
    async def start_long(request):
        run = await app.runs.create("deploy", "web", trigger="api", reason="a long deploy", status="running")
        run.log("pulling images, this takes a while")

        async def work():
            async with app.runs.track("deploy", "web", trigger="api", reason="", run=run):
                await asyncio.sleep(3600)

        task = asyncio.create_task(work())
        _TASKS.add(task)
        return web.json_response({"run_id": run.id}, status=202)

    async def quick(request):
        async with app.runs.track("sync", "infra", trigger="api", reason="a quick sync") as run:
            run.log("fetched")
        return web.json_response({"run_id": run.id})

    app.api.post("/api/v1/crashy/long", start_long, auth="deploy", summary="Start a long run")
    app.api.post("/api/v1/crashy/quick", quick, auth="deploy", summary="Run a quick run")
    return True
'''


@pytest.mark.slow
def test_kill_9_during_a_run_then_restart_reads_interrupted(tmp_path: Path, write_config, custom_addon) -> None:
    custom_addon("crashy", CRASHY)
    config = write_config("crashy: {}\n")
    port = free_port()
    log = tmp_path / "dockmaster.log"
    proc = _start(config, port, log)
    try:
        status, body = _call(port, "POST", "/api/v1/crashy/long")
        assert status == 202, body
        run_id = body["run_id"]
        assert _call(port, "GET", f"/api/v1/runs/{run_id}")[1]["status"] == "running"
        time.sleep(1.5)  # the live log is persisted every second
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    proc = _start(config, port, log)
    try:
        status, run = _call(port, "GET", f"/api/v1/runs/{run_id}")
        assert status == 200
        assert run["status"] == "interrupted"
        assert run["error"] == "the process stopped while this run was in progress"
        assert run["finished"] is not None
        assert "pulling images, this takes a while" in run["log"]
        status, listed = _call(port, "GET", "/api/v1/runs?status=interrupted", scope="read")
        assert [r["id"] for r in listed["runs"]] == [run_id]

        status, body = _call(port, "POST", "/api/v1/crashy/quick")
        assert status == 200
        status, fresh = _call(port, "GET", f"/api/v1/runs/{body['run_id']}")
        assert fresh["status"] == "succeeded" and fresh["id"] > run_id
        assert "run(s) were interrupted by the last shutdown" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert "Traceback" not in log.read_text()
