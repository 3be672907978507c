"""A real browser on the Notifications page: the "Send test" button reaches the receiver and shows the outcome."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.http.app import create_app
from tests.addons.notify.conftest import Receiver
from tests.conftest import ADMIN_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "tk_browser_5e4d3c2b1a"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]


@pytest.fixture
async def served(write_config: Callable[..., Path], receiver: Receiver) -> AsyncIterator[str]:
    """The real app with one notify target, served on 127.0.0.1."""
    path = write_config("notify:\n  - name: phone\n    url: !secret phone\n",
                        secrets={"phone": receiver.json_url(f"/hook/{TOKEN}")})
    runner = web.AppRunner(await create_app(path))
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_send_test_button(served: str, receiver: Receiver) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        errors: list[Any] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{served}/login?next=/notify")
        await page.fill("input[name=username]", "admin")
        await page.fill("input[name=password]", ADMIN_PASSWORD)
        await page.click("#signin")
        await page.wait_for_url(f"{served}/notify")
        await page.click('button[data-notify-test="phone"]')
        await expect(page.locator('output[data-notify-result="phone"]')).to_have_text("phone: sent")
        assert TOKEN not in await page.content()
        await browser.close()
    assert errors == []
    assert [r.json["title"] for r in receiver.requests] == ["Dockmaster test notification"]
