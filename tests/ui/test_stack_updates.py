"""Stacks in a real browser: Deploy on a row with its progress, the deploy chart, update badges and Apply update
against Debian's docker-registry, and the dashboard's card for a newer Dockmaster image."""

# ruff: noqa: F811 - fixtures imported from other test packages are parameters of the tests here
from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from addons.ops.const import CONSOLE_KEY as OPS_CONSOLE
from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from addons.stacks.chart import HEIGHT
from appliance.keys import APPLIANCE_KEY
from tests.addons.ops.conftest import build_image, image_ref, local_registry, make_container, push_image  # noqa: F401
from tests.addons.stacks.conftest import cleanup_projects, httpd_compose, wait_idle  # noqa: F401
from tests.support.git import GitRemote
from tests.ui.conftest import SHOTS
from tests.ui.test_backups import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.docker]
Serve = Callable[[Path], Awaitable[tuple[str, web.Application]]]
NEVER = "0 0 1 1 *"
# Image contents name their repository: the same content would build the same image id (the build
# cache), shared with other tests on the engine, and one test's cleanup would hit another's container.
OK, BAD = "rgb(63, 185, 80)", "rgb(248, 81, 73)"  # the dark theme's --ok and --bad

# Healthy only after two seconds, so the deploy (its health gate) visibly takes a while.
SLOW_HEALTHY = """services:
  web:
    image: {image}
    command: ["sh", "-c", "sleep 2; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
    network_mode: none
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      timeout: 2s
      retries: 2
      start_period: 30s
"""
# Exits at once with an error: the health gate fails it and the stack is rolled back.
BROKEN = """services:
  web:
    image: {image}
    command: ["sh", "-c", "exit 3"]
    restart: "no"
    network_mode: none
"""


@pytest.fixture
def serve_stacks(cleanup_projects: list[str], serve: Serve) -> Serve:
    """`serve`, set up after `cleanup_projects`: the app stops before its compose projects are removed."""
    return serve


@pytest.fixture
def registry_stacks(image_ref: str, cleanup_projects: list[str], serve: Serve) -> tuple[str, Serve]:
    """A repository in the local registry, and `serve`: the app stops, then its projects go, then the images."""
    return image_ref, serve


async def _page(chromium: Any, base: str) -> tuple[Any, Any]:
    context = await chromium.new_context(color_scheme="dark")
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await sign_in(page, base)
    return context, page


async def test_row_deploy_shows_progress_and_the_chart_shows_durations_and_outcomes(
    write_config: Any, serve_stacks: Serve, chromium: Any, tmp_path: Path, busybox_image: str,
    cleanup_projects: list[str],
) -> None:
    from playwright.async_api import expect

    name = f"chart-{secrets.token_hex(3)}"
    cleanup_projects.append(f"dm-{name}")
    remote = GitRemote(tmp_path / "git")
    remote.commit({"stacks/web/compose.yaml": SLOW_HEALTHY.format(image=busybox_image)}, "slow web")
    base, webapp = await serve_stacks(write_config({
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [{"name": name, "repo": "infra", "path": "stacks/web", "auto_deploy": False,
                    "health_timeout": "30s"}],
    }))
    app = webapp[APPLIANCE_KEY]
    context, page = await _page(chromium, base)
    await page.goto(f"{base}/stacks/{name}")
    await expect(page.locator("#deploy-chart-empty")).to_be_visible()

    await page.goto(f"{base}/stacks")
    row = page.locator(f'tr[data-stack="{name}"]')
    deploy = row.locator("button[data-action=deploy]")
    await expect(deploy).to_have_text("Deploy")
    async with page.expect_navigation(url=f"{base}/stacks"):
        await deploy.click()
    # Back on the list (a new page) while the deploy waits for its health gate: the row is busy, its
    # buttons are disabled and Deploy shows its progress; when the run ends the row reloads live.
    await expect(row).to_have_attribute("aria-busy", "true")
    await expect(deploy).to_be_disabled()
    await expect(deploy).to_have_text("Deploying…")
    await expect(deploy).to_have_class(re.compile(r"\bbusy\b"))
    await expect(row.locator("button[data-action=stop]")).to_be_disabled()
    await page.screenshot(path=str(SHOTS / "stacks-row-deploying.png"))
    await expect(deploy).to_be_enabled(timeout=60_000)
    await expect(deploy).to_have_text("Deploy")
    await expect(row.locator(".badge.status-healthy")).to_be_visible()

    # A broken commit: deployed from the row, refused by the health gate, rolled back.
    remote.commit({"stacks/web/compose.yaml": BROKEN.format(image=busybox_image)}, "broken web")
    await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="test sync")
    await page.reload()
    async with page.expect_navigation(url=f"{base}/stacks"):
        await deploy.click()
    await wait_idle(app)

    await page.goto(f"{base}/stacks/{name}")
    chart = page.locator("#deploy-chart svg")
    await expect(chart).to_have_attribute("role", "img")
    assert await page.locator("#deploy-chart-title").text_content() == f"Deploy durations and outcomes of {name}"
    summary = await page.locator("#deploy-chart-desc").text_content()
    assert summary is not None and summary.startswith("The last 2 deploys and 1 rollback: 2 succeeded, 1 failed;")
    bars = chart.locator("rect.bar")
    assert [await bars.nth(i).get_attribute("data-status") for i in range(await bars.count())] == [
        "succeeded", "failed", "succeeded"]
    assert [await bars.nth(i).get_attribute("data-kind") for i in range(3)] == ["deploy", "deploy", "rollback"]
    fills = [await bars.nth(i).evaluate("el => getComputedStyle(el).fill") for i in range(3)]
    assert fills == [OK, BAD, OK]
    # The deploy and the rollback of the slow stack (two seconds and more to be healthy) stand taller
    # than the broken deploy that failed at once; the tallest fills the chart. Each bar names its run.
    heights = [float(await bars.nth(i).get_attribute("height") or 0) for i in range(3)]
    assert heights[1] < min(heights[0], heights[2]) and max(heights) == HEIGHT - 2
    runs = [r for r in await app.runs.list(target=name) if r["kind"] in ("deploy", "rollback")]
    first = min(r["id"] for r in runs)
    assert await chart.locator("a").first.get_attribute("href") == f"/runs/{first}"
    assert (await bars.first.locator("title").text_content() or "").startswith(f"#{first} deploy succeeded in ")
    await page.locator("#deploy-chart").screenshot(path=str(SHOTS / "stack-deploy-chart.png"))
    await context.close()


async def test_update_badge_and_apply_update_run_the_new_digest(
    write_config: Any, registry_stacks: tuple[str, Serve], chromium: Any, tmp_path: Path, busybox_image: str,
    docker_client: Any, cleanup_projects: list[str],
) -> None:
    from playwright.async_api import expect

    image_ref, serve_stacks = registry_stacks

    name = "upd-" + image_ref.rsplit("-", 1)[1].split(":")[0]
    cleanup_projects.append(f"dm-{name}")
    build_image(docker_client, busybox_image, image_ref, f"{image_ref}-v1")
    old_digest = push_image(docker_client, image_ref)
    remote = GitRemote(tmp_path / "git")
    remote.commit({"stacks/web/compose.yaml": httpd_compose(image_ref, "v1")}, "web from the registry")
    base, webapp = await serve_stacks(write_config({
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [{"name": name, "repo": "infra", "path": "stacks/web"}],
        "ops": {"image_check": NEVER, "disk_check": NEVER},
    }))
    app = webapp[APPLIANCE_KEY]
    await wait_idle(app)

    def running() -> Any:
        [container] = docker_client.containers.list(filters={"label": [f"io.dockmaster.stack={name}"]})
        return container

    assert f"{image_ref.rsplit(':', 1)[0]}@{old_digest}" in running().image.attrs["RepoDigests"]
    context, page = await _page(chromium, base)
    await page.goto(f"{base}/stacks")
    row = page.locator(f'tr[data-stack="{name}"]')
    await expect(row.locator(".badge.status-healthy")).to_be_visible()
    assert await row.locator(".update-badge, button[data-action=apply_update]").count() == 0

    new_id = build_image(docker_client, busybox_image, image_ref, f"{image_ref}-v2")
    new_digest = push_image(docker_client, image_ref)
    await app.data[OPS_CONSOLE].async_image_tick()  # the scheduled check
    await page.goto(f"{base}/stacks/{name}")
    await expect(page.locator("h1 .update-badge")).to_have_text("update available")
    await expect(page.locator("#image-update")).to_contain_text(image_ref)
    await expect(page.locator("#image-update button[data-action=apply_update]")).to_have_text("Apply update")
    await page.goto(f"{base}/stacks")
    await expect(row.locator(".update-badge")).to_be_visible()
    await page.screenshot(path=str(SHOTS / "stacks-update-available.png"))
    async with page.expect_navigation(url=f"{base}/stacks"):
        await row.locator("button[data-action=apply_update]").click()
    # The update runs (pull, redeploy at the running revision, a fresh check); the row reloads live.
    await expect(row.locator(".update-badge")).to_have_count(0, timeout=90_000)
    await expect(row.locator("button[data-action=apply_update]")).to_have_count(0)
    container = running()
    assert container.image.id == new_id
    assert f"{image_ref.rsplit(':', 1)[0]}@{new_digest}" in container.image.attrs["RepoDigests"]
    await app.store.flush()
    [audit] = await app.store.fetchall("SELECT actor, target, outcome FROM audit WHERE action = 'op:stack_update'")
    assert dict(audit) == {"actor": "user:admin", "target": name, "outcome": "succeeded"}
    [run] = await app.runs.list(kind="operation", target=f"stack_update:{name}")
    assert (run["status"], run["trigger"], run["actor"]) == ("succeeded", "manual", "user:admin")
    await context.close()


async def test_the_dashboard_shows_a_newer_dockmaster_image_with_its_release_notes(
    write_config: Any, serve: Serve, chromium: Any, busybox_image: str, docker_client: Any, image_ref: str,
    make_container: Any,
) -> None:
    from playwright.async_api import expect

    build_image(docker_client, busybox_image, image_ref, f"{image_ref}-v1")
    push_image(docker_client, image_ref)
    own = make_container(image=image_ref)
    base, webapp = await serve(write_config({"ops": {"image_check": NEVER, "disk_check": NEVER}}))
    self_image = webapp[APPLIANCE_KEY].data[OPS_CONSOLE].self_image
    context, page = await _page(chromium, base)
    await self_image.async_check()  # outside a container the engine knows: no card
    await page.goto(f"{base}/")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("#self-image")).to_have_count(0)

    # As if Dockmaster ran in `own`: the same check against the container and the registry.
    self_image.locate = lambda client: client.containers.get(own.id).attrs
    build_image(docker_client, busybox_image, image_ref, f"{image_ref}-v2")
    push_image(docker_client, image_ref)
    assert (await self_image.async_check() or {})["status"] == "update_available"
    await page.reload()
    card = page.locator("#self-image")
    await expect(card.locator("#self-update-badge")).to_have_text("update available")
    await expect(card).to_contain_text(image_ref)
    await expect(card.locator("#release-notes")).to_have_attribute(
        "href", "https://github.com/dockmaster/dockmaster/releases")
    await card.screenshot(path=str(SHOTS / "dashboard-self-update.png"))
    own.reload()
    assert own.status == "running"  # never updated by Dockmaster
    await context.close()
