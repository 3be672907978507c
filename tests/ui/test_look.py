"""The UI a homelab expects, in a real browser: switch, busy buttons, phone menu, light theme, favicon, host badges."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.addons.stacks.conftest import httpd_compose
from tests.support.git import GitRemote
from tests.ui.conftest import SHOTS
from tests.ui.test_backups import sign_in

pytestmark = pytest.mark.browser


async def _bg(page: Any, selector: str) -> str:
    return str(await page.eval_on_selector(selector, "el => getComputedStyle(el).backgroundColor"))


async def test_light_theme_follows_the_system_and_the_favicon_is_served(write_config: Any, serve: Any,
                                                                        chromium: Any) -> None:
    base, _ = await serve(write_config())
    colours = {}
    for scheme in ("light", "dark"):
        context = await chromium.new_context(color_scheme=scheme)
        page = await context.new_page()
        await sign_in(page, base)
        colours[scheme] = await _bg(page, "body")
        if scheme == "light":
            SHOTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(SHOTS / "dashboard-light.png"), full_page=True)
        icon = await page.eval_on_selector("link[rel=icon]", "el => el.href")
        resp = await page.request.get(icon)
        assert resp.status == 200 and resp.headers["content-type"].startswith("image/svg+xml")
        await context.close()
    assert colours == {"light": "rgb(246, 248, 250)", "dark": "rgb(15, 20, 25)"}


async def test_phone_menu_is_compact_and_opens(write_config: Any, serve: Any, chromium: Any) -> None:
    from playwright.async_api import expect

    base, _ = await serve(write_config({"backup": {}}))
    context = await chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await sign_in(page, base)
    menu, nav = page.locator("#menu-toggle"), page.locator("#main-nav")
    await expect(menu).to_be_visible()
    await expect(nav).to_be_hidden()
    bar = await page.eval_on_selector(".topbar", "el => el.getBoundingClientRect().height")
    assert bar < 60, f"the top bar is {bar}px tall on a phone"
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(nav).to_be_visible()
    await page.screenshot(path=str(SHOTS / "phone-menu.png"))
    await nav.locator("text=Backups").click()
    await page.wait_for_url(f"{base}/backups")
    await expect(page.locator("#main-nav")).to_be_hidden()
    await context.close()


async def test_a_button_is_disabled_with_progress_while_its_action_runs(write_config: Any, serve: Any,
                                                                       chromium: Any) -> None:
    from playwright.async_api import expect

    base, _ = await serve(write_config({"backup": {}}))
    context = await chromium.new_context()
    page = await context.new_page()
    await sign_in(page, base)
    await page.goto(f"{base}/backups")
    release = asyncio.Event()

    async def slow(route: Any) -> None:
        await release.wait()
        await route.continue_()

    await page.route(f"{base}/backups", lambda route: asyncio.ensure_future(slow(route))
                     if route.request.method == "POST" else asyncio.ensure_future(route.continue_()))
    # Playwright waits for a pending navigation before it reads the page, so the page notes the
    # button's state itself (sessionStorage survives the navigation) while the POST is held back.
    await page.evaluate("""() => {
      const b = document.getElementById('backup-now');
      new MutationObserver(() => sessionStorage.setItem('busy', JSON.stringify(
        [b.disabled, b.className, b.textContent, b.form.getAttribute('aria-busy')]))
      ).observe(b, {attributes: true, childList: true, characterData: true, subtree: true});
      b.click();
    }""")
    await asyncio.sleep(1.0)
    release.set()
    await expect(page.locator("#backup-made")).to_be_visible()
    await expect(page.locator("#backup-now")).to_be_enabled()  # the next page starts fresh
    busy = await page.evaluate("() => JSON.parse(sessionStorage.getItem('busy'))")
    assert busy == [True, "busy", "Backing up…", "true"]
    await context.close()


@pytest.mark.docker
async def test_auto_deploy_switch_shows_its_state(write_config: Any, serve: Any, chromium: Any, tmp_path: Path,
                                                  busybox_image: str) -> None:
    from playwright.async_api import expect

    remote = GitRemote(tmp_path / "git")
    remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "web")}, "web")
    base, _ = await serve(write_config({
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [{"name": "switch-web", "repo": "infra", "path": "stacks/web", "auto_deploy": False}],
    }))
    context = await chromium.new_context(color_scheme="dark")
    page = await context.new_page()
    await sign_in(page, base)
    await page.goto(f"{base}/stacks")
    switch = page.locator("button.toggle")
    await expect(switch).to_have_attribute("aria-pressed", "false")
    off = await _bg(page, "button.toggle")
    await switch.click()
    await page.wait_for_url(f"{base}/stacks")
    await expect(page.locator("button.toggle")).to_have_attribute("aria-pressed", "true")
    on = await _bg(page, "button.toggle")
    assert on != off and on == "rgb(63, 185, 80)"
    await page.screenshot(path=str(SHOTS / "stacks-switch.png"))
    await context.close()


async def test_host_state_badges_are_coloured(write_config: Any, serve: Any, chromium: Any) -> None:
    base, _ = await serve(write_config({
        "hosts": [{"name": "lab-1", "address": "127.0.0.1", "port": 1, "user": "x",
                   "host_key_check": "accept-new"}],
    }))
    context = await chromium.new_context()
    page = await context.new_page()
    await sign_in(page, base)
    await page.goto(f"{base}/hosts")
    badge = page.locator("span.badge[class*=state-]").first
    state = (await badge.get_attribute("class")).split("state-")[1]
    colour = await _bg(page, "span.badge[class*=state-]")
    plain = "rgb(43, 52, 64)"  # an unstyled badge has the line colour
    assert colour != plain, f"state {state} has no colour of its own"
    await context.close()
