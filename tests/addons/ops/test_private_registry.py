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

from appliance.keys import APPLIANCE_KEY
from tests.addons.ops.conftest import build_image, push_image, remove_repo, running_image, serve_registry, unique
from tests.conftest import bearer

pytestmark = pytest.mark.docker

USER, PASSWORD = "dm-puller", "s3cret-registry-pw"
AUTH = {"username": USER, "password": PASSWORD}


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[str]:
    """docker-registry on 127.0.0.1 that wants a login (bcrypt htpasswd); yields `127.0.0.1:<port>`."""
    htpasswd = tmp_path / "htpasswd"
    made = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
    htpasswd.write_text(made.stdout)
    auth = {"htpasswd": {"realm": "dockmaster-test", "path": str(htpasswd)}}
    with serve_registry(tmp_path / "private", auth) as address:
        yield address


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
    remove_repo(docker_client, ref)


async def test_checks_and_pulls_use_the_stored_login(
    private_ref: str, private_registry: str, make_client: Any, docker_client: Any, busybox_image: str,
    compose_stack: Any, tmp_path: Path,
) -> None:
    ref = private_ref
    stack = unique("dmops-priv")
    build_image(docker_client, busybox_image, ref, "v1")
    push_image(docker_client, ref, AUTH)
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
    new_digest = push_image(docker_client, ref, AUTH)
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
    assert running_image(docker_client, stack) == new_id
    assert PASSWORD not in run["log"]
