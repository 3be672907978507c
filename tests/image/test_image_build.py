"""The real image/Dockerfile builds offline, and its container serves, stays healthy and drops root."""

from __future__ import annotations

import http.cookiejar
import re
import secrets
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SOCKET = "/var/run/docker.sock"


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_container_writes_starter_config_serves_and_becomes_healthy(
    docker_client: Any, appliance_image: Any, tmp_path: Path
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    socket_gid = Path(SOCKET).stat().st_gid
    container = docker_client.containers.run(
        appliance_image.id, name=f"dm-image-{secrets.token_hex(4)}", detach=True,
        ports={"8099/tcp": ("127.0.0.1", None)},
        volumes={str(config_dir): {"bind": "/config", "mode": "rw"}, SOCKET: {"bind": SOCKET, "mode": "rw"}},
        environment={"TZ": "Europe/Berlin", "PUID": "1234", "PGID": "1234"},
        # Only the interval is shortened: the test command itself is the image's own HEALTHCHECK.
        healthcheck={"interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3,
                     "start_period": 30_000_000_000},
    )
    try:
        def health() -> str | None:
            container.reload()
            if container.status == "exited":
                raise AssertionError(container.logs().decode())
            state = container.attrs["State"].get("Health", {}).get("Status")
            return state if state in ("healthy", "unhealthy") else None

        assert _wait(health, 90, "the health check") == "healthy", container.logs().decode()
        port = container.attrs["NetworkSettings"]["Ports"]["8099/tcp"][0]["HostPort"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as resp:
            assert resp.status == 200
        logs = container.logs().decode()
        assert "writing a starter config" in logs
        assert "configuration is valid" in logs
        assert "bootstrap token" in logs
        assert (config_dir / "config.yaml").read_text().startswith("# Dockmaster starter config")
        assert (config_dir / ".dockmaster" / "dockmaster.db").exists()
        assert (config_dir / ".dockmaster").stat().st_uid == 1234

        # The serving process runs as PUID with the socket's group, never as root.
        # tini is PID 1; its only child is the entrypoint, which became `dockmaster run` through exec.
        pid = container.exec_run(["cat", "/proc/1/task/1/children"]).output.decode().split()[0]
        cmdline = container.exec_run(["cat", f"/proc/{pid}/cmdline"]).output.decode()
        argv = cmdline.split("\0")
        assert argv[1].endswith("/dockmaster") and argv[2:4] == ["run", "-c"], argv
        status = container.exec_run(["cat", f"/proc/{pid}/status"]).output.decode()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        groups = next(line.split()[1:] for line in status.splitlines() if line.startswith("Groups:"))
        assert set(uids) == {"1234"}
        assert str(socket_gid) in groups

        # With exactly those ids, every tool `doctor` checks works, the engine through the socket included.
        doctor = container.exec_run(
            ["setpriv", "--reuid=1234", "--regid=1234", f"--groups=1234,{socket_gid}", "dockmaster", "doctor"]
        )
        assert doctor.exit_code == 0, doctor.output.decode()
        assert "ok  docker engine" in doctor.output.decode()

        # First run: bootstrap token -> setup page -> admin; the user survives a restart, comments stay.
        token = re.search(r"bootstrap token\n\n    (\S+)\n", logs).group(1)
        base = f"http://127.0.0.1:{port}"
        browser = _Browser(base)
        assert browser.post("/login", {"bootstrap_token": token, "next": "/"}).endswith("/setup")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/setup")).group(1)
        assert browser.post("/setup", {"csrf_token": csrf, "username": "admin", "password": "image password",
                                       "confirm": "image password"}) == f"{base}/"
        assert '<span class="who">admin</span>' in browser.get("/")
        config = (config_dir / "config.yaml").read_text()
        assert config.startswith("# Dockmaster starter config") and "# No user yet" in config
        assert "password_hash: !secret admin_password_hash" in config
        container.restart(timeout=30)
        _wait(health, 90, "the health check after a restart")
        port = container.attrs["NetworkSettings"]["Ports"]["8099/tcp"][0]["HostPort"]
        again = _Browser(f"http://127.0.0.1:{port}")
        assert again.post("/login", {"username": "admin", "password": "image password"}).endswith("/")
        assert "bootstrap token" not in container.logs(since=int(time.time()) - 5).decode()
    finally:
        container.remove(force=True)


class _Browser:
    """Form posts with a cookie jar, as a browser would send them (same-origin, no JavaScript)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as resp:
            return resp.read().decode()

    def post(self, path: str, form: dict[str, str]) -> str:
        """POST a form; returns the URL the redirects ended at."""
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Origin": self.base})
        with self.opener.open(request, timeout=30) as resp:
            return str(resp.url)
