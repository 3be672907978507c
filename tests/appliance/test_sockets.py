"""Bounded clients: caps on open WebSockets per identity and overall, small messages, no leak over cycles."""

from __future__ import annotations

import gc
import os
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from appliance.keys import APPLIANCE_KEY, LIVE_KEY
from tests.conftest import bearer

LIMITS = {"http": {"host": "127.0.0.1", "port": 8099, "max_websockets": 3, "max_websockets_per_identity": 2}}


@pytest.fixture
async def client(make_client_with_http) -> Any:
    return await make_client_with_http(LIMITS["http"])


@pytest.fixture
def make_client_with_http(aiohttp_client: Any, write_config: Any) -> Any:
    """The real app with its `http:` block replaced."""
    import yaml

    from appliance.http.app import create_app

    async def _make(http: dict[str, Any]) -> Any:
        path = write_config()
        data = yaml.safe_load(path.read_text())
        data["http"] = http
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return await aiohttp_client(await create_app(path))

    return _make


async def _refused(client: Any, scope: str) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/v1/events", headers=bearer(scope))
    return info.value.status


async def test_sockets_past_the_caps_get_a_clean_refusal(client: Any) -> None:
    first = await client.ws_connect("/api/v1/events", headers=bearer("read"))
    second = await client.ws_connect("/api/v1/events", headers=bearer("read"))
    assert await _refused(client, "read") == 429  # per identity
    third = await client.ws_connect("/api/v1/events", headers=bearer("deploy"))
    assert await _refused(client, "admin") == 429  # overall
    resp = await client.get("/api/v1/events", headers={**bearer("admin"), "Connection": "Upgrade",
                                                       "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "too_many_requests"
    status = await (await client.get("/api/v1/status", headers=bearer("read"))).json()
    sockets = status["limits"]["websockets"]
    assert sockets["open"] == 3 and sockets["max"] == 3 and sockets["max_per_identity"] == 2
    assert sockets["max_message_bytes"] == 4096 and sockets["refused"] == 3
    await first.close()
    fourth = await client.ws_connect("/api/v1/events", headers=bearer("admin"))
    for ws in (second, third, fourth):
        await ws.close()


async def test_a_large_client_message_closes_the_socket(client: Any) -> None:
    ws = await client.ws_connect("/api/v1/events", headers=bearer("read"))
    await ws.send_str("x" * 8192)
    msg = await ws.receive(timeout=5)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == WSCloseCode.MESSAGE_TOO_BIG
    await ws.close()


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_memory_stays_flat_over_a_thousand_open_close_cycles(make_client) -> None:
    client = await make_client()  # default caps: a close still settling never refuses the next open
    app = client.app[APPLIANCE_KEY]

    url = client.make_url("/api/v1/events")

    async def cycles(count: int) -> None:
        # A plain session: the test client keeps every socket it opened, which would be measured too.
        async with aiohttp.ClientSession() as session:
            for _ in range(count):
                ws = await session.ws_connect(url, headers=bearer("read"))
                await ws.close()

    await cycles(200)  # warm up: caches, pools and allocator arenas settle
    gc.collect()
    before = _rss()
    await cycles(1000)
    gc.collect()
    grown = _rss() - before
    assert grown < 8 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB over 1,000 cycles"
    assert app.sockets.open == 0 and app.sockets.tracked == 0
    assert client.app[LIVE_KEY].clients == 0
