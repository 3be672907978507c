"""A real browser (Debian's chromium via Playwright): sign in, watch a run appear live, follow its log, sign out."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY, TLS_KEY
from tests.conftest import ADMIN_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SHOTS = Path("/tmp/dockmaster-ui")

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def served(write_config: Any, request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, web.Application]]:
    """The real app on 127.0.0.1, served from this test's event loop (over https with `http.tls: self-signed`)."""
    scheme = getattr(request, "param", "http")
    path = write_config({"windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h"}}})
    if scheme == "https":
        path.write_text(path.read_text().replace("http:\n", "http:\n  tls: self-signed\n", 1))
    webapp = await create_app(path)
    runner = web.AppRunner(webapp)
    await runner.setup()
    port = _free_port()
    tls = webapp[TLS_KEY]
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server_context if tls else None)
    await site.start()
    yield f"{scheme}://127.0.0.1:{port}", webapp
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    # Not a skip: the setup installs Debian's chromium, and a UI without its browser test is untested.
    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install chromium (scripts/setup does)"

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def _sign_in(page: Any, base: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("#signin")
    await page.wait_for_url(f"{base}/")


@pytest.mark.parametrize("served", ["http", "https"], indirect=True)
async def test_sign_in_watch_a_run_live_follow_its_log_and_sign_out(served: tuple, browser: Any) -> None:
    from playwright.async_api import expect

    base, webapp = served
    app = webapp[APPLIANCE_KEY]
    https = base.startswith("https:")
    SHOTS.mkdir(exist_ok=True)
    # The self-signed certificate is trusted for this context only, as a user would after checking its fingerprint.
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, ignore_https_errors=https)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    await _sign_in(page, base)
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("#live-indicator")).to_have_class("live on")  # WebSocket connected (wss over https)
    cookies = {c["name"]: c for c in await context.cookies()}
    if https:
        assert set(cookies) == {"__Host-dm_session"} and cookies["__Host-dm_session"]["secure"] is True
        tls = webapp[TLS_KEY]
        await expect(page.locator("#tls-fingerprint")).to_have_text(tls.info.fingerprint)
    else:
        assert set(cookies) == {"dm_session"}
    await expect(page.locator("#runs tr.empty")).to_have_count(1)

    run = await app.runs.create("deploy", "traefik", trigger="manual", reason="deploy requested by user:admin",
                                status="running")
    row = page.locator(f'#runs tr[data-run-id="{run.id}"]')
    await expect(row).to_be_visible()  # no reload: it arrived over the WebSocket
    await expect(row.locator(".run-status")).to_have_text("running")
    await expect(row).to_contain_text("traefik")
    await expect(page.locator("#runs tr.empty")).to_have_count(0)
    await expect(page.locator("#active-runs")).to_have_text("1")
    await page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    await row.locator("a").click()
    await page.wait_for_url(f"{base}/runs/{run.id}")
    await expect(page.locator("#run-status")).to_have_text("running")
    await page.wait_for_function("() => window.dockmaster && window.dockmaster.live === true")
    run.log("pulling traefik:v3")
    await expect(page.locator("#run-log")).to_contain_text("pulling traefik:v3")
    run.log("container started")
    await expect(page.locator("#run-log")).to_contain_text("container started")
    await app.runs.finish(run, "succeeded")
    await expect(page.locator("#run-status")).to_have_text("succeeded")
    await page.screenshot(path=str(SHOTS / "run.png"), full_page=True)

    await page.goto(f"{base}/runs")
    await expect(page.locator(f'tr[data-run-id="{run.id}"] .run-status')).to_have_text("succeeded")

    assert errors == []  # no script errors and no failed requests while signed in
    await page.click("#logout")
    await page.wait_for_url(f"{base}/login")
    await expect(page.locator("#signin")).to_be_visible()
    await page.goto(f"{base}/")
    await page.wait_for_url(f"{base}/login?next=/")
    await context.close()


async def test_dashboard_fits_a_phone(served: tuple, browser: Any) -> None:
    base, webapp = served
    app = webapp[APPLIANCE_KEY]
    for i in range(3):
        run = await app.runs.create("deploy", f"a-rather-long-stack-name-{i}", trigger="webhook",
                                    reason="push to main changed stacks/a-rather-long-stack-name (3 files)")
        await app.runs.finish(run, "failed", error="health gate: service web is unhealthy after 120s")
    app.addon_failed("demo", "setup failed: RuntimeError: a long error message that must wrap on a small screen")
    SHOTS.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                        is_mobile=True, has_touch=True)
    page = await context.new_page()
    await _sign_in(page, base)
    for path in ("/", "/runs", f"/runs/{run.id}", "/audit"):
        await page.goto(f"{base}{path}")
        overflow = await page.evaluate(
            "() => [document.body.scrollWidth, document.documentElement.clientWidth]"
        )
        assert overflow[0] <= overflow[1], f"{path}: body is {overflow[0]}px wide on a {overflow[1]}px screen"
    await page.goto(f"{base}/")
    await page.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
    await page.goto(f"{base}/login")
    await context.close()


async def test_login_page_on_a_phone(served: tuple, browser: Any) -> None:
    base, _ = served
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await page.goto(f"{base}/login")
    width = await page.evaluate("() => document.body.scrollWidth")
    assert width <= 390
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", "wrong password")
    await page.click("#signin")
    from playwright.async_api import expect

    await expect(page.locator(".banner.error")).to_have_text("Wrong username or password.")
    await page.screenshot(path=str(SHOTS / "login.png"), full_page=True)
    await context.close()
