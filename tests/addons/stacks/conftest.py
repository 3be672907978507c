"""Fixtures for the stacks addon: real git remotes, busybox httpd stacks, the real app, compose cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp.test_utils import TestClient

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from appliance.core import Appliance
from appliance.keys import APPLIANCE_KEY
from tests.support.engines import ssh_engine, swarm_engine, tls_engine  # noqa: F401 - extra engines (session-wide)
from tests.support.git import GIT_ENV, GitRemote, git  # noqa: F401 - shared with the tests here
from tests.support.images import BUSYBOX_IMAGE


def httpd_compose(image: str, content: str, *, healthy: bool = True, extra_env: str = "") -> str:
    """A busybox httpd service on a 127.0.0.1 ephemeral port with a fast healthcheck."""
    probe = "8080" if healthy else "8081"  # an unhealthy commit probes a port nothing listens on
    return f"""services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo {content} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1::8080"]
    restart: unless-stopped
    stop_grace_period: 1s
{extra_env}    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{probe}/"]
      interval: 500ms
      timeout: 2s
      retries: 2
      start_period: 0s
"""


def swarm_stack_yaml(*, probe: int = 8080, image: str = BUSYBOX_IMAGE) -> str:
    """Two httpd replicas serving the `token` secret; `probe` is the port their healthcheck asks."""
    return f"""services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && cat /run/secrets/token > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{target: 8080, mode: host}}]
    secrets: [token]
    stop_grace_period: 1s
    environment: {{GREETING: hello}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{probe}/"]
      interval: 500ms
      timeout: 2s
      retries: 2
      start_period: 0s
    deploy:
      replicas: 2
      update_config: {{parallelism: 1, delay: 0s, failure_action: pause, monitor: 2s}}
      restart_policy: {{condition: any, delay: 500ms}}
secrets:
  token:
    file: ./token.txt
"""


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    """A bare remote with one commit on main."""
    return GitRemote(tmp_path / "git")


@pytest.fixture
def suffix() -> str:
    """A random suffix that keeps stack and project names unique on the shared engine."""
    return secrets.token_hex(3)


@pytest.fixture
def cleanup_projects(docker_client: Any) -> Iterator[list[str]]:
    """Names of compose projects to remove after the test (containers and networks)."""
    projects: list[str] = []
    yield projects
    for project in projects:
        label = {"label": f"com.docker.compose.project={project}"}
        for container in docker_client.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for network in docker_client.networks.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()


@pytest.fixture
def make_client(cleanup_projects: list[str], make_client: Any) -> Any:
    """The app factory, set up after `cleanup_projects`: every app stops before its projects are removed.

    Otherwise a deploy still in flight at the end of a test recreates containers after the cleanup.
    """
    return make_client


async def wait_idle(app: Appliance, timeout: float = 60.0) -> None:
    """Wait until no run is active and no listener or stack job is pending."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        busy = any(app.scheduler.busy(f"stack:{name}") for name in app.data[STACKS_SERVICE].engine.specs())
        if app.runs.active or busy or app.bus._tasks:
            quiet = 0
        else:
            quiet += 1
            if quiet >= 3:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still busy after {timeout}s: {list(app.runs.active.values())}")


async def sync(app: Appliance, repo: str = "infra") -> None:
    """Fetch the repo now (fires RepoSynced) and wait for every resulting run."""
    await app.data[REPOS_MANAGER].async_sync(repo, trigger="manual", reason="test sync")
    await wait_idle(app)


def container_ids(docker_client: Any, project: str) -> dict[str, str]:
    """Service name → container id of a compose project."""
    return {
        c.labels["com.docker.compose.service"]: c.id
        for c in docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    }


def served(docker_client: Any, project: str, service: str = "web") -> str:
    """GET / of a service through its port published on 127.0.0.1."""
    container = docker_client.containers.list(filters={
        "label": [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]})[0]
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode().strip()


StackApp = Callable[..., Awaitable[tuple[TestClient, Appliance]]]


@pytest.fixture
def stacks_app(make_client: Any, remote: GitRemote, cleanup_projects: list[str]) -> StackApp:
    """Start the real app with the repos addon on `remote` and the given `stacks:` entries."""

    async def _start(
        stacks: list[dict[str, Any]], *, settle: bool = True, **extra: Any
    ) -> tuple[TestClient, Appliance]:
        for entry in stacks:
            if "name" in entry:
                cleanup_projects.extend([f"dm-{entry['name']}", entry["name"]])
        config = {"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}], "stacks": stacks, **extra}
        client = await make_client(config)
        app = client.server.app[APPLIANCE_KEY]
        assert "stacks" in app.loaded_addons, app.addon_errors
        if settle:
            await wait_idle(app)
        return client, app

    return _start

