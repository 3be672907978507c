"""Fixtures for the ops console: labelled busybox containers, a local registry, an app with `ops:`."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer

# Exits at once on SIGTERM (sleep is short so the trap runs quickly); writes a numbered line every 0.2 s.
TICKER = "trap 'exit 0' TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"


def unique(prefix: str = "dmops") -> str:
    """A name no other test or engineer uses on the shared engine."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy (blocking; for fixtures)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def ops_config() -> dict[str, Any]:
    """An `ops:` block that never checks images on its own during a test."""
    return {"ops": {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *"}}


@pytest.fixture
def make_container(docker_client: docker.DockerClient, busybox_image: str) -> Iterator[Callable[..., Any]]:
    """Start labelled busybox containers (removed afterwards)."""
    created: list[Any] = []

    def _make(*, stack: str | None = None, service: str = "app", command: str = TICKER,
              image: str | None = None, name: str | None = None, managed: bool = True) -> Any:
        labels = {"io.dockmaster.managed": "true"} if managed else {}
        if stack:
            labels |= {"io.dockmaster.stack": stack, "com.docker.compose.service": service}
        container = docker_client.containers.run(
            image or busybox_image, ["sh", "-c", command], name=name or unique(), labels=labels, detach=True,
        )
        created.append(container)
        return container

    yield _make
    for container in created:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 with a temp storage dir; yields `127.0.0.1:<port>`."""
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path = tmp_path / "registry.yml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def _up() -> bool:
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


def build_image(client: docker.DockerClient, base: str, tag: str, content: str,
                labels: dict[str, str] | None = None) -> str:
    """Build a one-layer image on top of `base` with a marker file; returns its id."""
    lines = [f"FROM {base}", f"RUN echo {content} > /marker"]
    for key, value in (labels or {}).items():
        lines.append(f'LABEL "{key}"="{value}"')
    dockerfile = ("\n".join(lines) + "\n").encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
    return str(image.id)


async def audit_rows(client: Any, action: str) -> list[dict[str, Any]]:
    """Audit rows of one action, newest first (pending batched writes are committed first)."""
    await client.server.app[APPLIANCE_KEY].store.flush()
    resp = await client.get("/api/v1/audit", params={"action": action}, headers=bearer("admin"))
    assert resp.status == 200
    rows: list[dict[str, Any]] = (await resp.json())["audit"]
    return rows
