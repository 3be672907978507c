"""A private registry (docker-registry behind htpasswd): image checks and pulls use `registry login` credentials."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.keys import APPLIANCE_KEY
from tests.addons.ops.conftest import build_image, free_port, unique, wait_for
from tests.addons.ops.test_updates import _remove_repo, _running_image, compose_stack, image_ref  # noqa: F401
from tests.conftest import bearer

pytestmark = pytest.mark.docker

USER, PASSWORD = "dm-puller", "s3cret-registry-pw"


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[str]:
    """docker-registry on 127.0.0.1 that wants a login (bcrypt htpasswd); yields `127.0.0.1:<port>`."""
    htpasswd = tmp_path / "htpasswd"
    made = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
    htpasswd.write_text(made.stdout)
    port = free_port()
    config = {
        "version": 0.1, "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "private")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {"htpasswd": {"realm": "dockmaster-test", "path": str(htpasswd)}},
    }
    path = tmp_path / "private.yml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def _up() -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    try:
        wait_for(_up, timeout=10)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _push(docker_client: Any, ref: str) -> str:
    repo, tag = ref.rsplit(":", 1)
    for item in docker_client.images.push(repo, tag=tag, stream=True, decode=True,
                                          auth_config={"username": USER, "password": PASSWORD}):
        assert "error" not in item, item
    digests = docker_client.images.get(ref).attrs["RepoDigests"]
    return next(d.split("@")[1] for d in digests if d.startswith(repo + "@"))


async def _check(client: Any, stack: str) -> dict[str, Any]:
    resp = await client.post("/api/v1/ops/images_check", json={"args": {"stack": stack}}, headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = (await resp.json())["result"]["stacks"][stack]
    return result


@pytest.fixture
def private_ref(docker_client: Any, private_registry: str) -> Iterator[str]:
    """A fresh repository in the private registry; its local images are removed after the stacks are down."""
    ref = f"{private_registry}/{unique('dmops-priv')}:stable"
    yield ref
    _remove_repo(docker_client, ref)


async def test_checks_and_pulls_use_the_stored_login(
    private_ref: str, private_registry: str, make_client: Any, docker_client: Any, busybox_image: str,
    compose_stack: Any, tmp_path: Path,  # noqa: F811
) -> None:
    ref = private_ref
    stack = unique("dmops-priv")
    build_image(docker_client, busybox_image, ref, "v1")
    _push(docker_client, ref)
    compose_stack(stack, ref)
    client = await make_client({"windows": {"dmops-open": {"cron": "* * * * *", "duration": "1h"}},
                                "ops": {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *"}})
    app = client.server.app[APPLIANCE_KEY]
    image = (await _check(client, stack))["images"][0]
    assert image["status"] == "unknown" and "dockmaster registry login" in image["error"]

    login = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "appliance.cli", "registry", "login", private_registry, "-u", USER,
        "--password-stdin", "-c", str(tmp_path / "config.yaml")],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert login.returncode == 0, login.stderr
    stored = tmp_path / "data" / "docker" / "config.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert list(json.loads(stored.read_text())["auths"]) == [private_registry]
    assert PASSWORD not in login.stdout + login.stderr
    assert (await _check(client, stack))["images"][0]["status"] == "current"

    new_id = build_image(docker_client, busybox_image, ref, "v2")
    new_digest = _push(docker_client, ref)
    docker_client.images.remove(ref)  # the pull below must fetch v2 from the registry, with the login
    status = await _check(client, stack)
    assert status["update_available"] is True and status["images"][0]["remote_digest"] == new_digest

    resp = await client.post("/api/v1/ops/stack_update", json={"target": stack}, headers=bearer("deploy"))
    assert resp.status == 202, await resp.text()
    run_id = (await resp.json())["run_id"]
    deadline = time.monotonic() + 60
    while run_id in app.runs.active and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    run = await app.runs.get(run_id)
    assert run["status"] == "succeeded", run["log"]
    assert _running_image(docker_client, stack) == new_id
    assert PASSWORD not in run["log"]
