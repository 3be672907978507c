"""The Backups page in a real browser: Back up now, the new archive listed, its download link works."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.ui.conftest import SHOTS

pytestmark = pytest.mark.browser


async def sign_in(page: Any, base: str) -> None:
    """Sign in as the test admin."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("#signin")
    await page.wait_for_url(f"{base}/")


async def test_back_up_now_and_download(write_config: Any, serve: Any, chromium: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    base, _ = await serve(write_config({"backup": {"keep": 3}}))
    context = await chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = await context.new_page()
    await sign_in(page, base)
    await page.click("nav >> text=Backups")
    await page.wait_for_url(f"{base}/backups")
    await expect(page.locator("#backups tr.empty")).to_have_count(1)
    await page.click("#backup-now")
    await expect(page.locator("#backup-made")).to_contain_text("written")
    row = page.locator("#backups tbody tr[data-backup]")
    await expect(row).to_have_count(1)
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / "backups.png"), full_page=True)
    async with page.expect_download() as info:
        await row.locator("a").click()
    download = await info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    with tarfile.open(saved, "r:gz") as tar:
        assert {"manifest.json", "config/config.yaml", "data/dockmaster.db"} <= set(tar.getnames())
    await context.close()
