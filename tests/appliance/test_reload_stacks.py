"""A config edit plus a reload adds a stack that then deploys, without a restart (real git, real Docker)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.keys import APPLIANCE_KEY
from tests.addons.stacks.conftest import httpd_compose, served, sync, wait_idle
from tests.conftest import bearer
from tests.support.git import GitRemote

pytestmark = pytest.mark.docker


async def test_reload_adds_a_stack_that_deploys(make_client: Any, tmp_path: Path, busybox_image: str,
                                                docker_client: Any) -> None:
    suffix = secrets.token_hex(3)
    first, second = f"one-{suffix}", f"two-{suffix}"
    remote = GitRemote(tmp_path / "git")
    remote.commit({"stacks/one/compose.yaml": httpd_compose(busybox_image, "one"),
                   "stacks/two/compose.yaml": httpd_compose(busybox_image, "two")}, "two stacks")
    stacks = [{"name": first, "repo": "infra", "path": "stacks/one", "health_timeout": "30s"}]
    client = await make_client({"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
                                "stacks": stacks})
    app = client.app[APPLIANCE_KEY]
    try:
        await wait_idle(app)
        await sync(app)
        assert served(docker_client, f"dm-{first}") == "one"
        path = tmp_path / "config.yaml"
        data = yaml.safe_load(path.read_text())
        data["stacks"].append({"name": second, "repo": "infra", "path": "stacks/two", "health_timeout": "30s"})
        path.write_text(yaml.safe_dump(data, sort_keys=False))

        resp = await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["reloaded"] == ["stacks"] and body["restart_required"] == []
        listing = await (await client.get("/api/v1/stacks", headers=bearer("read"))).json()
        assert {s["name"] for s in listing["stacks"]} >= {first, second}
        resp = await client.post(f"/api/v1/stacks/{second}/deploy", json={}, headers=bearer("deploy"))
        assert resp.status == 202, await resp.text()
        await wait_idle(app)
        assert served(docker_client, f"dm-{second}") == "two"
        assert served(docker_client, f"dm-{first}") == "one"  # the unchanged stack kept running
    finally:
        await client.close()
        for project in (f"dm-{first}", f"dm-{second}"):
            for container in docker_client.containers.list(
                    all=True, filters={"label": f"com.docker.compose.project={project}"}):
                container.remove(force=True)
            for network in docker_client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
                network.remove()
