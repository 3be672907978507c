"""Pytest fixtures for real SSH test hosts, shared by the hosts and updates tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .fleet import HostFleet

FINAL = {"succeeded", "failed", "cancelled", "interrupted", "skipped"}


@pytest.fixture(scope="session")
def host_fleet(docker_client: Any) -> Iterator[HostFleet]:
    """A fleet factory: `host_fleet.start(n)` starts hosts in parallel; all are removed at the end."""
    fleet = HostFleet(docker_client)
    yield fleet
    fleet.close()


async def wait_run(client: TestClient, run_id: int, timeout: float = 120.0) -> dict[str, Any]:
    """Poll a run until it is final; returns it."""
    from tests.conftest import bearer

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.get(f"/api/v1/runs/{run_id}", headers=bearer("read"))
        run = await resp.json()
        if run.get("status") in FINAL:
            return dict(run)
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout}s")


async def host_state(client: TestClient, name: str) -> dict[str, Any]:
    """GET /api/v1/hosts/{name}."""
    from tests.conftest import bearer

    resp = await client.get(f"/api/v1/hosts/{name}", headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def wait_state(client: TestClient, name: str, state: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll until a host reaches `state`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        host = await host_state(client, name)
        if host["state"] == state:
            return host
        await asyncio.sleep(0.1)
    raise AssertionError(f"host {name} never reached {state}: {host['state']} ({host['reason']})")
