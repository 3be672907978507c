"""Fixtures: a recording HTTP receiver and a stalling TCP server on 127.0.0.1, and a notify app."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from addons.notify.const import ENGINE_KEY as NOTIFY_ENGINE
from appliance.core import Appliance
from appliance.keys import APPLIANCE_KEY


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Receiver:
    """A local HTTP endpoint that answers 200 and records what Apprise posts to it."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request and answer with the configured status."""
        body = await request.json() if request.can_read_body else None
        self.requests.append(Received(request.method, request.path, dict(request.headers), body))
        self._changed.set()
        return web.json_response({"ok": True}, status=self.status)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `count` requests arrived (fails the test on timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"expected {count} request(s), got {len(self.requests)}: {self.requests}"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.requests

    def json_url(self, path: str = "/hook") -> str:
        """An Apprise json:// URL for this receiver."""
        return f"json://127.0.0.1:{self.port}{path}"

    def ntfy_url(self, topic: str) -> str:
        """An Apprise ntfy:// URL (self-hosted mode, plain http) for this receiver."""
        return f"ntfy://127.0.0.1:{self.port}/{topic}?mode=private&format=markdown"


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    """A running receiver on 127.0.0.1."""
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    # The receiver stands for a remote service: its own access log is not Dockmaster's log.
    server = await aiohttp_server(app, host="127.0.0.1", access_log=None)
    rec.port = server.port
    return rec


@dataclass
class StallServer:
    """Accepts TCP connections and never answers."""

    port: int
    accepted: int = 0


@pytest.fixture
async def stall_server() -> AsyncIterator[StallServer]:
    """A port on 127.0.0.1 that accepts connections and stalls them until the test ends."""
    release = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []
    info = StallServer(0)

    async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.accepted += 1
        writers.append(writer)
        await release.wait()
        writer.close()

    server = await asyncio.start_server(_stall, "127.0.0.1", 0)
    info.port = server.sockets[0].getsockname()[1]
    yield info
    release.set()
    await asyncio.sleep(0)
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def async_deliveries(app: Appliance, *, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Poll the delivery records until at least `count` exist (or the timeout passes)."""
    engine = app.data[NOTIFY_ENGINE]
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict[str, Any]] = await engine.log.async_recent(limit=500)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


NotifyApp = Callable[..., Awaitable[tuple[TestClient, Appliance]]]


@pytest.fixture
def notify_app(make_client: Any) -> NotifyApp:
    """The real app from a `notify:` YAML block (its URLs passed as secrets); returns client and appliance."""

    async def _make(notify_yaml: str, secrets: dict[str, str] | None = None,
                    extra: str = "") -> tuple[TestClient, Appliance]:
        client = await make_client(notify_yaml + extra, secrets=secrets)
        return client, client.server.app[APPLIANCE_KEY]

    return _make
