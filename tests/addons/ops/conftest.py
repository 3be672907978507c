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


@contextlib.contextmanager
def serve_registry(root: Path, auth: dict[str, Any] | None = None) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 storing under `root` (optionally behind `auth`); yields `host:port`."""
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth:
        config["auth"] = auth
    path = root.with_suffix(".yml")
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


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 with a temp storage dir; yields `127.0.0.1:<port>`."""
    with serve_registry(tmp_path / "registry") as address:
        yield address


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


def push_image(docker_client: Any, ref: str, auth: dict[str, str] | None = None) -> str:
    """Push `ref` to its registry and return the pushed digest."""
    repo, tag = ref.rsplit(":", 1)
    for item in docker_client.images.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
        assert "error" not in item, item
    digests = docker_client.images.get(ref).attrs["RepoDigests"]
    return next(d.split("@")[1] for d in digests if d.startswith(repo + "@"))


@pytest.fixture
def image_ref(docker_client, local_registry):
    """A fresh repository in the local registry; every image of it is removed after the stacks are down."""
    ref = f"{local_registry}/{unique('dmops-img')}:stable"
    yield ref
    remove_repo(docker_client, ref)


@pytest.fixture
def compose_stack(tmp_path: Path, compose_argv, image_ref):
    """Start `dm-<stack>` compose projects running one image; brought down afterwards."""
    started: list[tuple[str, Path]] = []

    def _up(stack: str, image: str) -> str:
        folder = tmp_path / stack
        folder.mkdir()
        (folder / "compose.yaml").write_text(yaml.safe_dump({"services": {"web": {
            # No network: the shared engine's address pools are scarce, and the ticker needs none.
            "image": image, "command": ["sh", "-c", TICKER.replace("$", "$$")], "network_mode": "none",
            "labels": {"io.dockmaster.managed": "true", "io.dockmaster.stack": stack},
        }}}))
        project = f"dm-{stack}"
        started.append((project, folder))
        out = subprocess.run([*compose_argv, "-p", project, "--project-directory", str(folder), "-f",
                              str(folder / "compose.yaml"), "up", "-d"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "Started" in out.stderr + out.stdout, out.stderr + out.stdout
        return project

    yield _up
    for project, folder in started:
        subprocess.run([*compose_argv, "-p", project, "--project-directory", str(folder), "down", "-t", "1"],
                       capture_output=True, timeout=120)


def remove_repo(docker_client, ref: str) -> None:
    """Remove every image of the test repository (older pushes stay behind as digest references)."""
    repo = ref.rsplit(":", 1)[0]
    for image in docker_client.images.list(name=repo):
        docker_client.images.remove(image.id, force=True)


def running_image(docker_client, stack: str) -> str:
    [container] = docker_client.containers.list(filters={"label": [f"io.dockmaster.stack={stack}"]})
    return container.attrs["Image"]
