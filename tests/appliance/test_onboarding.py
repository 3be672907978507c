"""First run: bootstrap token -> setup page -> admin user written to the config, signed in, no restart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from appliance.auth import verify_password
from appliance.config import check_config
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY, AUTH_KEY

PASSWORD = "a password for the first user"
CONFIG = """\
# my homelab
dockmaster:
  name: lab          # the title
  data_dir: {data}
http:
  host: 127.0.0.1
  port: 8099
"""


def _bootstrap_token(captured: str) -> str:
    match = re.search(r"bootstrap token\n\n    (\S+)\n", captured)
    assert match, captured
    return match.group(1)


@pytest.fixture
async def fresh(aiohttp_client: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> tuple[TestClient, str]:
    """An appliance with no user and no token, and the bootstrap token it printed on the console."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    client = await aiohttp_client(await create_app(path))
    return client, _bootstrap_token(capfd.readouterr().err)


async def _bootstrap(client: TestClient, token: str) -> str:
    resp = await client.post("/login", data={"bootstrap_token": token, "next": "/runs"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/setup"
    page = await (await client.get("/setup")).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match and "Create the first user" in page
    return match.group(1)


async def test_setup_creates_the_admin_signs_in_and_closes_the_bootstrap(fresh: tuple[TestClient, str],
                                                                        tmp_path: Path) -> None:
    client, token = fresh
    csrf = await _bootstrap(client, token)
    resp = await client.post("/setup", data={"csrf_token": csrf, "username": "admin", "password": PASSWORD,
                                             "confirm": PASSWORD}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    page = await (await client.get("/")).text()
    assert "<h1>Dashboard</h1>" in page and '<span class="who">admin</span>' in page

    text = (tmp_path / "config.yaml").read_text()
    assert text.startswith(CONFIG.format(data=tmp_path / "data"))  # comments kept
    assert "      password_hash: !secret admin_password_hash\n" in text
    secrets = (tmp_path / "secrets.yaml").read_text()
    stored = re.search(r"admin_password_hash: (\$argon2id\$\S+)", secrets)
    assert stored and verify_password(stored.group(1), PASSWORD)
    assert check_config(tmp_path / "config.yaml").ok

    auth = client.app[AUTH_KEY]
    assert not auth.needs_setup and not auth.bootstrap_open
    assert not [s for s in auth.sessions.by_key.values() if s.kind == "bootstrap"]
    await client.app[APPLIANCE_KEY].store.flush()  # audit rows are written in batches
    audit = await client.app[APPLIANCE_KEY].store.fetchall("SELECT * FROM audit WHERE action = 'setup'")
    assert [(r["actor"], r["target"]) for r in audit] == [("bootstrap:bootstrap", "user:admin")]
    # A second setup is refused, and the new user signs in with the password like any other.
    resp = await client.get("/setup", allow_redirects=False)
    assert resp.status == 303
    await client.post("/logout", data={"csrf_token": re.search(r'data-csrf="([^"]+)"', page).group(1)})
    resp = await client.post("/login", data={"username": "admin", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303


async def test_the_user_survives_a_restart(fresh: tuple[TestClient, str], tmp_path: Path,
                                           aiohttp_client: Any) -> None:
    client, token = fresh
    csrf = await _bootstrap(client, token)
    await client.post("/setup", data={"csrf_token": csrf, "username": "boss", "password": PASSWORD,
                                      "confirm": PASSWORD}, allow_redirects=False)
    await client.close()
    again = await aiohttp_client(await create_app(tmp_path / "config.yaml"))
    assert not again.app[AUTH_KEY].bootstrap_open
    resp = await again.post("/login", data={"username": "boss", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303


async def test_the_first_token_is_shown_once_and_works(fresh: tuple[TestClient, str], tmp_path: Path) -> None:
    client, token = fresh
    csrf = await _bootstrap(client, token)
    resp = await client.post("/setup", data={"csrf_token": csrf, "username": "admin", "password": PASSWORD,
                                             "confirm": PASSWORD, "token_name": "home-assistant",
                                             "token_scope": "deploy"})
    page = await resp.text()
    assert resp.status == 200
    api_token = re.search(r'<pre id="new-token">(dm_[^<]+)</pre>', page).group(1)
    assert api_token not in (tmp_path / "config.yaml").read_text() + (tmp_path / "secrets.yaml").read_text()
    assert "token_hash: !secret home-assistant_token_hash" in (tmp_path / "config.yaml").read_text()
    resp = await client.get("/api/v1/status", headers={"Authorization": f"Bearer {api_token}"})
    assert resp.status == 200
    resp = await client.post("/api/v1/config/reload", headers={"Authorization": f"Bearer {api_token}"})
    assert resp.status == 403  # deploy scope, not admin


@pytest.mark.parametrize(("form", "message"), [
    ({"username": "Admin!", "password": PASSWORD, "confirm": PASSWORD}, "Username: use lower-case"),
    ({"username": "admin", "password": "short", "confirm": "short"}, "Password: at least 8 characters."),
    ({"username": "admin", "password": PASSWORD, "confirm": PASSWORD + "x"}, "Password: the two entries differ."),
    ({"username": "admin", "password": PASSWORD, "confirm": PASSWORD, "token_name": "Bad Name"}, "Token name:"),
])
async def test_bad_input_is_shown_and_nothing_is_written(fresh: tuple[TestClient, str], tmp_path: Path,
                                                         form: dict[str, str], message: str) -> None:
    client, token = fresh
    csrf = await _bootstrap(client, token)
    before = (tmp_path / "config.yaml").read_text()
    resp = await client.post("/setup", data={"csrf_token": csrf, **form})
    assert resp.status == 400 and message in await resp.text()
    assert (tmp_path / "config.yaml").read_text() == before and not (tmp_path / "secrets.yaml").exists()
    assert client.app[AUTH_KEY].needs_setup


async def test_only_the_bootstrap_session_may_set_up(fresh: tuple[TestClient, str]) -> None:
    client, _ = fresh
    resp = await client.get("/setup", allow_redirects=False)
    assert resp.status == 401  # not signed in
    resp = await client.post("/setup", data={"username": "admin", "password": PASSWORD, "confirm": PASSWORD})
    assert resp.status == 401
    assert client.app[AUTH_KEY].needs_setup


async def test_setup_without_csrf_is_refused(fresh: tuple[TestClient, str]) -> None:
    client, token = fresh
    await _bootstrap(client, token)
    resp = await client.post("/setup", data={"username": "admin", "password": PASSWORD, "confirm": PASSWORD})
    assert resp.status == 403
    assert client.app[AUTH_KEY].needs_setup
