"""docs/tutorial.md walked in a real browser; its screenshots (docs/img/tutorial-*.png) are written here.

From an empty git repository to a deployed, health-gated stack that a signed webhook redeploys: the
first-run setup, a config edit applied with Reload, the deploy, then a push delivered as a webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from tests.addons.stacks.conftest import httpd_compose, served
from tests.support.git import GitRemote

pytestmark = [pytest.mark.browser, pytest.mark.docker]

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
VIEWPORT = {"width": 1100, "height": 700}
PASSWORD = "a long admin password"
WEBHOOK_SECRET = "4f1c2b7e9a0d3c5e8f6a1b2c3d4e5f60"


async def _stack(page: Any, base: str, name: str) -> dict[str, Any]:
    resp = await page.request.get(f"{base}/api/v1/stacks/{name}")
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def _wait_stack(page: Any, base: str, name: str, revision: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    stack: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stack = await _stack(page, base, name)
        if stack["deployed_revision"] == revision and stack["health"] == "healthy" and not stack["busy"]:
            return stack
        await asyncio.sleep(0.3)
    raise AssertionError(f"{name} is not healthy at {revision[:7]}: {stack}")


async def _shot(page: Any, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(IMG / name))


async def test_the_tutorial_from_an_empty_repo_to_a_webhook_deploy(
        tmp_path: Path, serve: Any, chromium: Any, capfd: pytest.CaptureFixture[str], busybox_image: str,
        docker_client: Any) -> None:
    from playwright.async_api import expect

    started = time.monotonic()
    name = f"hello-{secrets.token_hex(3)}"
    project = f"dm-{name}"
    # Step 1: a git repository with one stack folder (an empty repo, then the first commit).
    remote = GitRemote(tmp_path / "git")
    first = remote.commit({"stacks/hello/compose.yaml": httpd_compose(busybox_image, "hello")}, "Add the hello stack")

    # Step 2: Dockmaster with an empty config folder; the bootstrap token from its console; the setup page.
    config = tmp_path / "config" / "config.yaml"
    config.parent.mkdir()
    # As the image's starter config: the repos, stacks and webhooks sections are there, empty.
    config.write_text(f"dockmaster:\n  name: homelab\n  data_dir: {tmp_path / 'config' / '.dockmaster'}\n"
                      "http:\n  host: 127.0.0.1\nrepos: []\nstacks: []\nwebhooks: []\n")
    base, _webapp = await serve(config)
    token = re.search(r"bootstrap token\n\n    (\S+)\n", capfd.readouterr().err).group(1)
    context = await chromium.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(f"{base}/login")
        await page.fill("input[name=bootstrap_token]", token)
        await page.click("#bootstrap-signin")
        await page.wait_for_url(f"{base}/setup")
        await page.fill("input[name=username]", "admin")
        await page.fill("input[name=password]", PASSWORD)
        await page.fill("input[name=confirm]", PASSWORD)
        await _shot(page, "tutorial-1-setup.png")
        await page.click("#create-user")
        await page.wait_for_url(re.compile(r".*/(setup/done|)$"))
        if await page.locator("#to-dashboard").count():
            await page.click("#to-dashboard")
        await page.wait_for_url(f"{base}/")

        # Step 3: the repo, the stack and the webhook go into config.yaml; Reload applies them.
        secrets_file = config.parent / "secrets.yaml"
        secrets_file.write_text(secrets_file.read_text() + f"homelab_webhook_secret: {WEBHOOK_SECRET}\n")
        text = config.read_text()
        for empty, filled in (
                ("repos: []\n", f"repos:\n  - name: homelab\n    url: {remote.bare}\n    branch: main\n"),
                ("stacks: []\n", f"stacks:\n  - name: {name}\n    repo: homelab\n    path: stacks/hello\n"
                                  "    health_timeout: 60s\n"),
                ("webhooks: []\n", "webhooks:\n  - repo: homelab\n    provider: generic\n"
                                    "    secret: !secret homelab_webhook_secret\n")):
            assert empty in text
            text = text.replace(empty, filled)
        config.write_text(text)
        await page.click("#reload-config")
        await expect(page.locator("#reload-result .banner.ok")).to_contain_text("reloaded")
        await _shot(page, "tutorial-2-reload.png")

        # Step 4: the first sync deploys the stack; the health gate passes.
        stack = await _wait_stack(page, base, name, first)
        assert stack["last_run"]["status"] == "succeeded"
        assert served(docker_client, project) == "hello"
        await page.goto(f"{base}/stacks/{name}")
        await expect(page.locator("body")).to_contain_text("healthy")
        await _shot(page, "tutorial-3-stack.png")

        # Step 5: a push, delivered as a signed webhook, redeploys only that stack.
        second = remote.commit({"stacks/hello/compose.yaml": httpd_compose(busybox_image, "hello-again")},
                               "Say hello again")
        body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        async with aiohttp.ClientSession() as session, session.post(
                f"{base}/hooks/homelab", data=body,
                headers={"Content-Type": "application/json", "X-Signature-256": signature}) as resp:
            assert resp.status == 202, await resp.text()
            assert (await resp.json())["status"] == "accepted"
        stack = await _wait_stack(page, base, name, second)
        assert served(docker_client, project) == "hello-again"
        await page.goto(f"{base}/webhooks")
        await expect(page.locator("body")).to_contain_text("accepted")
        await _shot(page, "tutorial-4-webhook.png")
        await page.goto(f"{base}/runs")
        # The sync came from the push; the deploy says which commit changed the stack's folder.
        await expect(page.locator("body")).to_contain_text(f"generic sender push to main at {second[:7]}")
        await expect(page.locator("body")).to_contain_text(f"commit {second[:7]} changed stacks/hello/compose.yaml")
        await _shot(page, "tutorial-5-runs.png")
        assert errors == []
    finally:
        await context.close()
        label = {"label": f"com.docker.compose.project={project}"}
        for container in docker_client.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for network in docker_client.networks.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
    # The tutorial promises less than 10 minutes; the machine does it much faster.
    assert time.monotonic() - started < 600
    for shot in sorted(IMG.glob("tutorial-*.png")):
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size < 400_000, shot
