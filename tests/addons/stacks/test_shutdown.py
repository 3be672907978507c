"""SIGTERM to `dockmaster run` while a deploy waits on its health gate: out within 30 s, the run recorded."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.addons.stacks.conftest import httpd_compose
from tests.conftest import TOKENS
from tests.support.daemon import call, free_port
from tests.support.daemon import start as _start
from tests.support.git import GitRemote

STOP_WITHIN = 30.0  # docker's and the templates' stop timeout: past it the container is killed


def _call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    return call(port, method, path, TOKENS["admin"], body)


def _wait_run(port: int, run_id: int, until: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, run = _call(port, "GET", f"/api/v1/runs/{run_id}")
        assert status == 200, run
        if until(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never got there: {run}")


@pytest.mark.slow
@pytest.mark.docker
def test_sigterm_during_a_health_gated_deploy(tmp_path: Path, write_config: Any, remote: GitRemote, suffix: str,
                                              busybox_image: str, docker_client: Any,
                                              cleanup_projects: list[str]) -> None:
    name = f"slow-{suffix}"
    cleanup_projects.append(f"dm-{name}")
    # The container runs but its healthcheck never passes: the deploy waits on the gate for 10 minutes.
    remote.commit({"stacks/slow/compose.yaml": httpd_compose(busybox_image, "v1", healthy=False)}, "slow stack")
    config = write_config({
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [{"name": name, "repo": "infra", "path": "stacks/slow", "auto_deploy": False,
                    "health_timeout": "600s", "rollback": False}],
    })
    port = free_port()
    log = tmp_path / "dockmaster.log"
    proc = _start(config, port, log)
    try:
        status, body = _call(port, "POST", f"/api/v1/stacks/{name}/deploy", {})
        assert status == 202, body
        run_id = body["run_id"]
        # In flight: the container is up and the run is on the health gate.
        _wait_run(port, run_id, lambda r: r["status"] == "running" and "waiting:" in (r["log"] or ""))
        label = {"label": f"com.docker.compose.project=dm-{name}"}
        assert [c.status for c in docker_client.containers.list(filters=label)] == ["running"]

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_WITHIN + 15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert took < STOP_WITHIN, f"stopping took {took:.1f} s"
    assert proc.returncode == 0, log.read_text()[-3000:]

    # Recorded by the stopping process itself, not left for the next start to repair.
    with sqlite3.connect(tmp_path / "data" / "dockmaster.db") as db:
        row = db.execute("SELECT status, error, finished FROM runs WHERE id = ?", (run_id,)).fetchone()
        live = db.execute("SELECT COUNT(*) FROM runs WHERE status IN ('running', 'queued')").fetchone()[0]
    status_, error, finished = row
    assert status_ == "interrupted", row
    assert error == "Dockmaster shut down while this run was in progress" and finished is not None, row
    assert live == 0

    proc = _start(config, port, log)
    try:
        assert "run(s) were interrupted by the last shutdown" not in log.read_text()
        _status, run = _call(port, "GET", f"/api/v1/runs/{run_id}")
        assert run["status"] == "interrupted" and run["error"] == error
        assert "waiting:" in run["log"]  # the log up to the stop was kept

        # A new trigger works: a healthy commit, fetched and deployed.
        remote.commit({"stacks/slow/compose.yaml": httpd_compose(busybox_image, "v2")}, "healthy now")
        status, body = _call(port, "POST", "/api/v1/repos/infra/sync", {})
        assert status == 202, body
        synced = _wait_run(port, body["run_id"], lambda r: r["status"] not in ("queued", "running"))
        assert synced["status"] == "succeeded", synced
        status, body = _call(port, "POST", f"/api/v1/stacks/{name}/deploy", {})
        assert status == 202, body
        done = _wait_run(port, body["run_id"], lambda r: r["status"] not in ("queued", "running"), timeout=120)
        assert done["status"] == "succeeded", done
        _status, stack = _call(port, "GET", f"/api/v1/stacks/{name}")
        assert stack["health"] == "healthy"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_WITHIN)
    assert "Traceback" not in log.read_text()
