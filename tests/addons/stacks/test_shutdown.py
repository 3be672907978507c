"""SIGTERM to `dockmaster run` while a deploy waits on its health gate: out within 30 s, the run recorded."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.addons.stacks.conftest import httpd_compose
from tests.conftest import TOKENS
from tests.support.git import GitRemote

DOCKMASTER = str(Path(sys.executable).parent / "dockmaster")
# The process imports this checkout's code, whichever checkout the venv's editable install points at.
REPO = Path(__file__).resolve().parents[3]
STOP_WITHIN = 30.0  # docker's and the templates' stop timeout: past it the container is killed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                                     headers={"Authorization": f"Bearer {TOKENS['admin']}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen([DOCKMASTER, "run", "-c", str(config), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dockmaster run exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"dockmaster run did not answer within 30 s:\n{log.read_text()}")


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
    port = _free_port()
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
