"""Stacks API, UI pages and CLI verbs end to end; drift healing and adoption of a running project."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from tests.conftest import bearer, sign_in

from .conftest import GitRemote, StackApp, container_ids, httpd_compose, served, sync, wait_idle

pytestmark = pytest.mark.docker


async def test_api_and_ui_deploy_dry_run_toggle_and_rollback(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"api-{suffix}"
    v1 = remote.commit({"stacks/api/compose.yaml": httpd_compose(busybox_image, "api-v1")}, "API v1")
    client, app = await stacks_app([{"name": name, "repo": "infra", "path": "stacks/api", "health_timeout": "20s"}])

    listing = await (await client.get("/api/v1/stacks", headers=bearer("read"))).json()
    item = next(s for s in listing["stacks"] if s["name"] == name)
    assert item["deployed_revision"] == v1 and item["health"] == "healthy" and item["commit_message"] == "API v1"
    assert (await client.get("/api/v1/stacks/nope", headers=bearer("read"))).status == 404
    assert (await client.patch(f"/api/v1/stacks/{name}", json={"auto_deploy": False},
                               headers=bearer("read"))).status == 403

    resp = await client.patch(f"/api/v1/stacks/{name}", json={"auto_deploy": False}, headers=bearer("deploy"))
    assert resp.status == 200 and (await resp.json())["auto_deploy"] is False
    v2 = remote.commit({"stacks/api/compose.yaml": httpd_compose(busybox_image, "api-v2")}, "API v2")
    await sync(app)
    assert served(docker_client, f"dm-{name}") == "api-v1"  # auto_deploy off: not touched

    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={"dry_run": True}, headers=bearer("deploy"))
    assert resp.status == 202
    await wait_idle(app)
    detail = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert detail["last_dry_run"]["changed_files"] == ["compose.yaml"]
    assert "-    command: [\"sh\", \"-c\", \"mkdir -p /www && echo api-v1" in detail["last_dry_run"]["diff"]
    assert served(docker_client, f"dm-{name}") == "api-v1"  # a dry-run changes nothing

    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={}, headers=bearer("deploy"))
    assert resp.status == 202
    await wait_idle(app)
    assert served(docker_client, f"dm-{name}") == "api-v2"
    run = await app.runs.get((await resp.json())["run_id"])
    assert run is not None and run["reason"] == "manual deploy by token:t-deploy" and run["trigger"] == "api"

    # The UI: list, stack page, a confirmed rollback form with CSRF that continues on the run page.
    csrf = await sign_in(client)
    page = await (await client.get("/stacks")).text()
    assert name in page and "API v2" in page
    page = await (await client.get(f"/stacks/{name}")).text()
    assert 'data-confirm="Roll' in page and "Revision history" in page and "manual deploy by token:t-deploy" in page
    assert (await client.post(f"/stacks/{name}/rollback", data={})).status == 403  # no CSRF token
    resp = await client.post(f"/stacks/{name}/rollback", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    match = re.match(r"/runs/(\d+)$", resp.headers["Location"])
    assert match
    await wait_idle(app)
    assert served(docker_client, f"dm-{name}") == "api-v1"
    state = app.data[STACKS_SERVICE].engine.states.get(name)
    assert state.deployed_revision == v1 and v2 in state.bad
    audit = await app.store.fetchall("SELECT actor, action FROM audit WHERE target = ?", (name,))
    assert {("token:t-deploy", "stack.auto_deploy"), ("token:t-deploy", "stack.deploy"),
            ("user:admin", "stack.rollback")} <= {(a["actor"], a["action"]) for a in audit}
    row = await app.store.fetchone("SELECT auto_deploy FROM stack_state WHERE name = ?", (name,))
    assert row == {"auto_deploy": 0}


async def test_drift_is_detected_and_healed(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"drift-{suffix}"
    remote.commit({"stacks/drift/compose.yaml": httpd_compose(busybox_image, "d1")}, "d1")
    client, app = await stacks_app([{"name": name, "repo": "infra", "path": "stacks/drift",
                                     "health_timeout": "20s"}])
    container = docker_client.containers.get(container_ids(docker_client, f"dm-{name}")["web"])
    await asyncio.to_thread(container.stop, timeout=1)
    resp = await client.post(f"/api/v1/stacks/{name}/drift", headers=bearer("deploy"))
    body = await resp.json()
    assert body["drift"] == [f"container {container.name} stopped"]
    await wait_idle(app)
    last = (await app.runs.list(target=name, limit=1))[0]
    assert last["trigger"] == "drift" and last["status"] == "succeeded"
    assert last["reason"] == f"drift: container {container.name} stopped"
    assert served(docker_client, f"dm-{name}") == "d1"
    events = await app.store.fetchall("SELECT data FROM events WHERE type = 'drift_detected'")
    assert events and name in events[-1]["data"]
    detail = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert detail["drift"] is None


async def test_running_compose_project_is_adopted_not_duplicated(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    compose_argv: list[str], tmp_path: Path, cleanup_projects: list[str],
) -> None:
    name = f"adopt-{suffix}"
    compose_text = httpd_compose(busybox_image, "by-hand")
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    (by_hand / "compose.yaml").write_text(compose_text)
    cleanup_projects.append(name)
    await asyncio.to_thread(subprocess.run, [*compose_argv, "-p", name, "up", "-d"], cwd=by_hand, check=True,
                            capture_output=True)
    remote.commit({"stacks/adopt/compose.yaml": httpd_compose(busybox_image, "from-git")}, "Adopt me")
    entry = {"name": name, "repo": "infra", "path": "stacks/adopt", "health_timeout": "20s"}
    # Without adopt: true the project someone started by hand is left alone, and nothing is duplicated.
    client, app = await stacks_app([entry])
    refused = (await app.runs.list(target=name, limit=1))[0]
    assert refused["status"] == "failed"
    assert f"a compose project named '{name}' that Dockmaster did not start already runs 1 container(s); " \
           "set 'adopt: true'" in refused["error"]
    assert served(docker_client, name) == "by-hand" and container_ids(docker_client, f"dm-{name}") == {}
    await client.close()

    _, app = await stacks_app([{**entry, "adopt": True}])
    assert container_ids(docker_client, f"dm-{name}") == {}
    assert list(container_ids(docker_client, name)) == ["web"]
    assert served(docker_client, name) == "from-git"
    run = await app.runs.get((await app.runs.list(target=name, limit=1))[0]["id"])
    assert run is not None and "adopting the compose project" in run["log"]


async def test_cli_deploy_dry_run_and_rollback(
    remote: GitRemote, write_config: Any, busybox_image: str, docker_client: Any, suffix: str,
    cleanup_projects: list[str],
) -> None:
    name = f"cli-{suffix}"
    cleanup_projects.append(f"dm-{name}")
    remote.commit({"stacks/cli/compose.yaml": httpd_compose(busybox_image, "cli-v1")}, "CLI v1")
    config = write_config({"repos": [{"name": "infra", "url": str(remote.bare)}],
                           "stacks": [{"name": name, "repo": "infra", "path": "stacks/cli", "health_timeout": "20s"}]})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appliance.cli", *args, "-c", str(config)],
                              capture_output=True, text=True, timeout=120)

    first = await asyncio.to_thread(cli, "deploy", name)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "succeeded" in first.stdout
    assert served(docker_client, f"dm-{name}") == "cli-v1"
    remote.commit({"stacks/cli/compose.yaml": httpd_compose(busybox_image, "cli-v2")}, "CLI v2")
    dry = await asyncio.to_thread(cli, "deploy", name, "--dry-run")
    assert dry.returncode == 0 and "1 file(s) differ" in dry.stdout, dry.stdout
    assert served(docker_client, f"dm-{name}") == "cli-v1"
    second = await asyncio.to_thread(cli, "deploy", name)
    assert second.returncode == 0 and served(docker_client, f"dm-{name}") == "cli-v2"
    back = await asyncio.to_thread(cli, "rollback", name)
    assert back.returncode == 0, back.stdout + back.stderr
    assert served(docker_client, f"dm-{name}") == "cli-v1"
    assert (await asyncio.to_thread(cli, "deploy", "no-such-stack")).returncode != 0


async def test_stacks_list_follows_deploys_live(stacks_app: StackApp, suffix: str) -> None:
    client, _ = await stacks_app([{"name": f"live-{suffix}", "repo": "infra", "path": "stacks/live",
                                   "auto_deploy": False}])
    await sign_in(client)
    page = await (await client.get("/stacks")).text()
    # data-live makes the page open the events WebSocket; the script reloads the table on run events.
    assert re.search(r'<table class="runs" id="stacks" data-live>', page)
    assert '<script src="/stacks/static/stacks.js" defer></script>' in page
    resp = await client.get("/stacks/static/stacks.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    script = await resp.text()
    assert "dockmaster:event" in script and "run_finished" in script
