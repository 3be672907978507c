"""The dashboard's reload button in a real browser: errors with file and line, then a clean reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from addons.backup.engine import ENGINE_KEY as BACKUP
from appliance.keys import APPLIANCE_KEY
from tests.ui.conftest import SHOTS
from tests.ui.test_backups import sign_in

pytestmark = pytest.mark.browser


async def test_reload_button_shows_errors_then_reloads(write_config: Any, serve: Any, chromium: Any,
                                                       tmp_path: Path) -> None:
    from playwright.async_api import expect

    path = write_config({"backup": {"keep": 2}})
    base, webapp = await serve(path)
    app = webapp[APPLIANCE_KEY]
    context = await chromium.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await sign_in(page, base)
    good = path.read_text()
    path.write_text(good.replace("keep: 2", "keep: lots"))
    button = page.locator("#reload-config")
    await button.click()
    result = page.locator("#reload-result .banner.error")
    await expect(result).to_contain_text("nothing was changed")
    line = good.splitlines().index("  keep: 2") + 1
    await expect(result.locator("li")).to_have_text(f"backup.keep: expected int (config.yaml, line {line})")
    await expect(button).to_be_enabled()
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / "reload-errors.png"), full_page=True)
    assert app.data[BACKUP].keep == 2

    path.write_text(good.replace("keep: 2", "keep: 9"))
    await button.click()
    await expect(page.locator("#reload-result .banner.ok")).to_contain_text("reloaded: backup")
    assert app.data[BACKUP].keep == 9
    await context.close()
