"""Discovery across repos: a stack name made by two repos is refused on both, never silently replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer

from .conftest import GitRemote, container_ids, sync, wait_idle
from .test_stack_data import data_compose

pytestmark = pytest.mark.docker


async def test_a_name_two_repos_make_is_refused_on_both(
    tmp_path: Path, make_client: Any, busybox_image: str, docker_client: Any, suffix: str,
    cleanup_projects: list[str],
) -> None:
    name, other = f"app-{suffix}", f"solo-{suffix}"
    cleanup_projects.extend([f"dm-{name}", f"dm-{other}"])
    first, second = GitRemote(tmp_path / "one"), GitRemote(tmp_path / "two")
    first.commit({f"stacks/{name}/compose.yaml": data_compose(busybox_image, "one"),
                  f"stacks/{other}/compose.yaml": data_compose(busybox_image, "solo")}, "Stacks")
    client = await make_client({
        "repos": [{"name": "one", "url": str(first.bare)}, {"name": "two", "url": str(second.bare)}],
        "stacks": [{"discover": {"repo": "one", "path": "stacks/*", "health_timeout": "20s"}},
                   {"discover": {"repo": "two", "path": "apps/*", "health_timeout": "20s"}}],
    })
    app = client.server.app[APPLIANCE_KEY]
    await sync(app, "one")
    await sync(app, "two")
    running = container_ids(docker_client, f"dm-{name}")
    assert list(running) == ["app"]

    # Another repo gains a folder of the same name: refused on both, and it never replaces the running one.
    second.commit({f"apps/{name}/compose.yaml": data_compose(busybox_image, "two")}, "Same name")
    await sync(app, "two")
    await wait_idle(app)
    listing = await (await client.get("/api/v1/stacks", headers=bearer("read"))).json()
    assert [s["name"] for s in listing["stacks"]] == [other]
    assert listing["problems"] == [
        f"stack name '{name}' is made by one:stacks/{name} (discovered) and two:apps/{name} (discovered); "
        "neither is deployed until one is renamed or excluded"]
    assert container_ids(docker_client, f"dm-{name}") == running
    assert (await client.post(f"/api/v1/stacks/{name}/deploy", json={}, headers=bearer("deploy"))).status == 404
    first.commit({f"stacks/{name}/compose.yaml": data_compose(busybox_image, "one-v2")}, "A change while clashing")
    await sync(app, "one")
    assert container_ids(docker_client, f"dm-{name}") == running

    # Giving the name back settles it: the stack is listed and deployed from its own repo again.
    second.commit({f"apps/{name}": None}, "Give the name back")
    await sync(app, "two")
    await sync(app, "one")
    await wait_idle(app)
    listing = await (await client.get("/api/v1/stacks", headers=bearer("read"))).json()
    assert listing["problems"] == [] and name in [s["name"] for s in listing["stacks"]]
    log = app.data_dir / "stacks" / name / "work" / "data" / "log"
    assert log.read_text().split()[0] == "one"
