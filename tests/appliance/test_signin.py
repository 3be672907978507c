"""Sign-in under attack: the loop stays responsive, guessers are throttled per address, sessions persist."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from appliance.auth import hash_password
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY, AUTH_KEY
from appliance.sessions import session_key
from tests.conftest import ADMIN_PASSWORD

PROXY = ["127.0.0.1/32"]


@pytest.fixture
def make_app(aiohttp_client: Any, write_config: Callable[..., Path]) -> Callable[..., Awaitable[TestClient]]:
    """The real app behind a trusted proxy on 127.0.0.1, so X-Forwarded-For picks the client address."""

    async def _make(auth: dict[str, Any] | None = None, path: Path | None = None) -> TestClient:
        if path is None:
            path = write_config()
            data = yaml.safe_load(path.read_text())
            data["http"]["trusted_proxies"] = PROXY
            data["auth"].update(auth or {})
            path.write_text(yaml.safe_dump(data, sort_keys=False))
        return await aiohttp_client(await create_app(path))

    return _make


async def _login(client: TestClient, address: str, username: str = "admin",
                 password: str = ADMIN_PASSWORD) -> Any:
    return await client.post("/login", data={"username": username, "password": password, "next": "/"},
                             headers={"X-Forwarded-For": address}, allow_redirects=False)


async def test_concurrent_bad_sign_ins_do_not_stall_the_loop(make_app) -> None:
    client = await make_app()
    latencies: list[float] = []
    answers: list[tuple[int, float, str]] = []

    async def bad_sign_in(index: int) -> None:
        started = time.perf_counter()
        resp = await _login(client, f"192.0.2.{index + 1}", username=secrets.token_hex(6), password="wrong")
        answers.append((resp.status, time.perf_counter() - started, await resp.text()))

    async def health_until(done: asyncio.Future[Any]) -> None:
        while not done.done():
            started = time.perf_counter()
            resp = await client.get("/api/health")
            assert resp.status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    attack = asyncio.ensure_future(asyncio.gather(*(bad_sign_in(i) for i in range(20))))
    await asyncio.gather(attack, health_until(attack))
    assert len(latencies) >= 10
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    assert p99 < 0.1, f"/api/health p99 {p99 * 1000:.0f} ms during the sign-in flood"
    assert {status for status, _, _ in answers} <= {401, 429}
    busy = [elapsed for status, elapsed, text in answers if status == 429 and "being checked" in text]
    checked = [elapsed for status, elapsed, _ in answers if status == 401]
    # Past the gate's few slots, attempts are refused before any hashing, so well before the checked ones end.
    assert busy and checked and max(busy) < max(checked)


async def test_fifty_failures_from_one_address_do_not_lock_the_admin_out_elsewhere(make_app) -> None:
    client = await make_app()
    statuses = [(await _login(client, "203.0.113.66", password=f"guess-{i}")).status for i in range(50)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    started = time.perf_counter()
    resp = await _login(client, "198.51.100.20")
    assert resp.status == 303
    assert time.perf_counter() - started < 5  # one argon2 check, no lockout to wait out
    assert (await _login(client, "203.0.113.66")).status == 429  # the guesser's address still waits


async def test_a_password_spray_from_one_address_is_slowed(make_app) -> None:
    client = await make_app({"address_attempts": 6})
    statuses = [(await _login(client, "203.0.113.5", username=f"user{i}", password="x")).status for i in range(8)]
    assert statuses == [401] * 6 + [429] * 2
    assert (await _login(client, "203.0.113.6", username="user7", password="x")).status == 401


async def test_the_global_budget_slows_a_spread_spray_but_lets_known_addresses_in(make_app) -> None:
    client = await make_app({"global_attempts": 4})
    assert (await _login(client, "198.51.100.1")).status == 303  # the admin's usual address
    for i in range(4):
        assert (await _login(client, f"203.0.113.{i + 1}", password="x")).status == 401
    resp = await _login(client, "203.0.113.99")
    assert resp.status == 429 and "overall" in await resp.text()
    assert (await _login(client, "198.51.100.1")).status == 303


def _cookie(resp: Any) -> str:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar["dm_session"].value


async def test_sessions_survive_a_restart_and_are_stored_hashed(make_app) -> None:
    client = await make_app()
    session_id = _cookie(await _login(client, "198.51.100.1"))
    store = client.app[APPLIANCE_KEY].store
    await store.flush()
    rows = await store.fetchall("SELECT * FROM sessions")
    assert [r["key"] for r in rows] == [session_key(session_id)]
    assert session_id not in repr(rows)
    path = client.app[APPLIANCE_KEY].config_path
    await client.close()

    again = await make_app(path=path)
    resp = await again.get("/api/v1/status", cookies={"dm_session": session_id})
    assert resp.status == 200
    await again.post("/logout", cookies={"dm_session": session_id},
                     headers={"X-CSRF-Token": again.app[AUTH_KEY].sessions.get(session_id).csrf})
    store = again.app[APPLIANCE_KEY].store
    await store.flush()
    assert await store.fetchall("SELECT * FROM sessions") == []
    again.session.cookie_jar.clear()
    assert (await again.get("/api/v1/status", cookies={"dm_session": session_id})).status == 401


async def test_a_password_change_ends_the_users_sessions(make_app) -> None:
    client = await make_app()
    session_id = _cookie(await _login(client, "198.51.100.1"))
    path = client.app[APPLIANCE_KEY].config_path
    await client.close()
    data = yaml.safe_load(path.read_text())
    data["auth"]["users"][0]["password_hash"] = hash_password("a new password")
    path.write_text(yaml.safe_dump(data, sort_keys=False))

    again = await make_app(path=path)
    assert (await again.get("/api/v1/status", cookies={"dm_session": session_id})).status == 401
    store = again.app[APPLIANCE_KEY].store
    await store.flush()
    assert await store.fetchall("SELECT * FROM sessions") == []
    assert (await _login(again, "198.51.100.1", password="a new password")).status == 303
