"""First run in a real browser: bootstrap token -> setup page -> admin created -> dashboard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from appliance.keys import AUTH_KEY
from tests.ui.conftest import SHOTS

pytestmark = pytest.mark.browser
PASSWORD = "the first admin password"


async def test_first_run_creates_the_admin_in_the_browser(tmp_path: Path, serve: Any, chromium: Any,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    from playwright.async_api import expect

    config = tmp_path / "config.yaml"
    config.write_text(f"# kept\ndockmaster:\n  name: lab\n  data_dir: {tmp_path / 'data'}\n"
                      "http:\n  host: 127.0.0.1   # local only\n")
    base, webapp = await serve(config)
    token = re.search(r"bootstrap token\n\n    (\S+)\n", capfd.readouterr().err).group(1)
    SHOTS.mkdir(exist_ok=True)
    context = await chromium.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    await page.goto(f"{base}/")
    await page.wait_for_url(f"{base}/login?next=/")
    await expect(page.locator(".banner.warn")).to_contain_text("No user is configured yet")
    await page.fill("input[name=bootstrap_token]", token)
    await page.click("#bootstrap-signin")
    await page.wait_for_url(f"{base}/setup")
    errors.clear()  # the first visit's 401 (not signed in yet) is expected
    await expect(page.locator("h1")).to_have_text("Create the first user")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", PASSWORD)
    await page.fill("input[name=confirm]", PASSWORD)
    await page.fill("input[name=token_name]", "home-assistant")
    await page.select_option("select[name=token_scope]", "deploy")
    await page.screenshot(path=str(SHOTS / "setup.png"), full_page=True)
    await page.click("#create-user")
    await expect(page.locator("#new-token")).to_have_text(re.compile(r"^dm_\S+$"))
    await page.screenshot(path=str(SHOTS / "setup-token.png"), full_page=True)
    await page.click("#to-dashboard")
    await page.wait_for_url(f"{base}/")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator(".who")).to_have_text("admin")
    assert not webapp[AUTH_KEY].needs_setup
    text = config.read_text()
    assert text.startswith(f"# kept\ndockmaster:\n  name: lab\n  data_dir: {tmp_path / 'data'}\n"
                           "http:\n  host: 127.0.0.1   # local only\n")
    assert "password_hash: !secret admin_password_hash" in text
    assert errors == []
    await context.close()
