"""Browser fixtures shared by the UI tests: Debian's chromium through Playwright, and the app on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.http.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SHOTS = Path("/tmp/dockmaster-ui")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium (Debian's) driven by Playwright."""
    from playwright.async_api import async_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install chromium (scripts/setup does)"
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Path], Awaitable[tuple[str, web.Application]]]]:
    """Serve the real app for a config file on a free 127.0.0.1 port; returns (base URL, app)."""
    runners: list[web.AppRunner] = []

    async def _serve(path: Path) -> tuple[str, web.Application]:
        webapp = await create_app(path)
        runner = web.AppRunner(webapp)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}", webapp

    yield _serve
    for runner in reversed(runners):
        await runner.cleanup()
