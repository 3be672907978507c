"""Inside the real image, a stack's `./data` lands in the host folder that holds /config, and survives redeploys."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from appliance.auth import hash_token
from tests.support.git import GIT_ENV, GitRemote, git

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SOCKET = "/var/run/docker.sock"
TOKEN = "dm_image_admin_token"  # a test token, hashed into the test's own config
BUSYBOX = "dockmaster-test/busybox:1"


def _compose(content: str) -> str:
    return f"""services:
  app:
    image: {BUSYBOX}
    command: ["sh", "-c", "echo {content} >> /data/log; trap 'exit 0' TERM; sleep 3600 & wait"]
    volumes: ["./data:/data"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-s", "/data/log"]
      interval: 300ms
      retries: 5
"""


def _wait(condition: Any, timeout: float, what: str, container: Any, runs: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    seen = runs() if runs else ""
    raise AssertionError(f"timed out waiting for {what}; the appliance logged:\n{container.logs().decode()[-4000:]}"
                         f"\nruns: {seen}")


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.is_file() else []


@pytest.mark.parametrize("same_path", [False, True], ids=["config-at-another-path", "same-path-mount"])
def test_stack_data_lands_in_the_host_folder_and_survives_a_redeploy(
    docker_client: Any, appliance_image: Any, tmp_path: Path, busybox_image: str, same_path: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config_dir = tmp_path / "appdata" / "dockmaster"
    inside = config_dir if same_path else Path("/config")
    remote = GitRemote(config_dir / "git")
    # The container takes ownership of /config; this test (root) keeps committing to the repo in it.
    monkeypatch.setitem(GIT_ENV, "GIT_CONFIG_COUNT", "1")
    monkeypatch.setitem(GIT_ENV, "GIT_CONFIG_KEY_0", "safe.directory")
    monkeypatch.setitem(GIT_ENV, "GIT_CONFIG_VALUE_0", "*")
    git(remote.work, "config", "remote.origin.receivepack", "git -c safe.directory=* receive-pack")
    remote.commit({"stacks/app/compose.yaml": _compose("v1")}, "Stack with data")
    stack = f"imgdata-{secrets.token_hex(3)}"
    project = f"dm-{stack}"
    (config_dir / "config.yaml").write_text(yaml.safe_dump({
        "dockmaster": {"name": "image", "data_dir": str(inside / ".dockmaster"), "time_zone": "UTC"},
        "http": {"host": "0.0.0.0", "port": 8099},  # inside the container; published on 127.0.0.1
        "auth": {"tokens": [{"name": "test", "token_hash": hash_token(TOKEN), "scopes": ["admin"]}]},
        "repos": [{"name": "infra", "url": str(inside / "git" / "remote.git"), "branch": "main"}],
        "stacks": [{"name": stack, "repo": "infra", "path": "stacks/app", "health_timeout": "30s"}],
    }))
    container = docker_client.containers.run(
        appliance_image.id, name=f"dm-image-{secrets.token_hex(4)}", detach=True,
        ports={"8099/tcp": ("127.0.0.1", None)},
        volumes={str(config_dir): {"bind": str(inside), "mode": "rw"}, SOCKET: {"bind": SOCKET, "mode": "rw"}},
        environment={"DOCKMASTER_CONFIG": str(inside / "config.yaml"), "PUID": "1234", "PGID": "1234"},
    )
    work = config_dir / ".dockmaster" / "stacks" / stack / "work"
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8099/tcp"][0]["HostPort"]

        def api(path: str, method: str = "GET") -> Any:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", method=method, data=b"{}" if method == "POST" else None,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.loads(resp.read())

        def serving() -> bool:
            try:
                return bool(api("/api/health"))
            except OSError:
                return False

        _wait(serving, 60, "the API", container)
        # A fetch deploys the stack; its container appends to ./data/log, on the host.
        api("/api/v1/repos/infra/sync", "POST")
        def runs() -> str:
            return json.dumps([api(f"/api/v1/runs/{r['id']}") for r in api("/api/v1/runs?limit=5")["runs"]])[-6000:]

        _wait(lambda: _lines(work / "data" / "log") == ["v1"], 120, f"the first deploy to write {work}/data/log",
              container, runs)

        def bind_source() -> str:
            app = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
            assert len(app) == 1, app
            return str(next(m["Source"] for m in app[0].attrs["Mounts"] if m["Destination"] == "/data"))

        def healthy() -> bool:
            idle = not api("/api/v1/runs?status=running")["runs"]
            return bool(idle and api(f"/api/v1/stacks/{stack}")["health"] == "healthy")

        _wait(healthy, 60, "the first deploy to pass its health gate", container, runs)
        assert bind_source() == str(work / "data")

        remote.commit({"stacks/app/compose.yaml": _compose("v2")}, "Redeploy")
        api("/api/v1/repos/infra/sync", "POST")
        _wait(lambda: _lines(work / "data" / "log") == ["v1", "v2"], 120, "the redeploy", container, runs)
        _wait(healthy, 60, "the redeploy to pass its health gate", container, runs)
        assert bind_source() == str(work / "data")
        detail = api(f"/api/v1/stacks/{stack}")
        assert detail["health"] == "healthy", detail
        assert detail["host_paths"]["ok"] is True, detail
    finally:
        container.remove(force=True)
        for leftover in docker_client.containers.list(all=True, filters={
                "label": f"com.docker.compose.project={project}"}):
            leftover.remove(force=True)
        for network in docker_client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
