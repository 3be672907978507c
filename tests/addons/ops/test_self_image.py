"""Self-update awareness with Debian's docker-registry: a newer image of its own container is shown, never applied."""

from __future__ import annotations

from typing import Any

import pytest

from addons.ops.const import CONSOLE_KEY as OPS_CONSOLE
from appliance.keys import APPLIANCE_KEY
from tests.addons.ops.conftest import build_image, push_image
from tests.conftest import bearer, sign_in

pytestmark = pytest.mark.docker


def as_own_container(container: Any) -> Any:
    """Where the engine runs no container of Dockmaster (here), name the container whose image is checked."""
    return lambda client: client.containers.get(container.id).attrs


async def _check(client: Any) -> Any:
    resp = await client.post("/api/v1/ops/images_check", json={}, headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["result"]["dockmaster"]


async def test_a_newer_image_of_its_own_container_is_shown_with_release_notes(
    make_client: Any, docker_client: Any, busybox_image: str, image_ref: str, make_container: Any,
) -> None:
    build_image(docker_client, busybox_image, image_ref, f"{image_ref}-v1")
    old_digest = push_image(docker_client, image_ref)
    own = make_container(image=image_ref)
    client = await make_client({"ops": {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *",
                                        "release_notes": "https://example.org/dockmaster/releases"}})
    app = client.server.app[APPLIANCE_KEY]
    app.data[OPS_CONSOLE].self_image.locate = as_own_container(own)
    await sign_in(client)

    status = await _check(client)
    assert status["status"] == "current" and status["update_available"] is False
    assert status["local_digest"] == old_digest and status["container"] == own.name
    page = await (await client.get("/")).text()
    assert 'id="self-image"' in page and 'id="self-update-current"' in page and "update available" not in page

    build_image(docker_client, busybox_image, image_ref, f"{image_ref}-v2")
    new_digest = push_image(docker_client, image_ref)
    status = await _check(client)
    assert (status["status"], status["local_digest"], status["remote_digest"]) == (
        "update_available", old_digest, new_digest)
    page = await (await client.get("/")).text()
    assert 'id="self-update-badge"' in page
    assert 'href="https://example.org/dockmaster/releases" id="release-notes"' in page
    updates = await (await client.get("/api/v1/ops/updates", headers=bearer("read"))).json()
    assert updates["dockmaster"]["remote_digest"] == new_digest
    # It only tells: the container keeps running the image it was started from.
    own.reload()
    assert own.status == "running" and own.image.attrs["RepoDigests"] == [f"{image_ref.rsplit(':', 1)[0]}@{old_digest}"]


async def test_outside_a_container_nothing_is_shown(make_client: Any, ops_config: dict[str, Any]) -> None:
    client = await make_client(ops_config)
    app = client.server.app[APPLIANCE_KEY]
    # The engine here runs no container of this process (the detection of appliance.hostpaths finds none).
    assert await app.data[OPS_CONSOLE].self_image.async_check() is None
    await sign_in(client)
    page = await (await client.get("/")).text()
    assert 'id="self-image"' not in page
    assert (await (await client.get("/api/v1/ops/updates", headers=bearer("read"))).json())["dockmaster"] is None


def test_the_release_notes_default_is_the_projects_releases_page() -> None:
    import tomllib
    from pathlib import Path

    from addons.ops import CONFIG_SCHEMA

    project = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())["project"]
    assert CONFIG_SCHEMA({})["release_notes"] == project["urls"]["Release notes"]


async def test_a_reload_replaces_the_dashboard_card(make_client: Any, ops_config: dict[str, Any],
                                                    tmp_path: Any) -> None:
    client = await make_client(ops_config)
    app = client.server.app[APPLIANCE_KEY]
    own = app.data[OPS_CONSOLE].self_image
    # A status as a check inside a container leaves it (the card shows only then).
    own.status = {"image": "registry.lan/dockmaster:latest", "status": "current", "update_available": False,
                  "checked": 1.0, "container": "dockmaster", "local_digest": None, "remote_digest": None,
                  "error": None}
    assert [c.name for c in app.ui.cards] == ["ops.self_image"]
    path = tmp_path / "config.yaml"
    notes = "release_notes: https://example.org/notes\n  image_check:"
    path.write_text(path.read_text().replace("image_check:", notes))
    resp = await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["reloaded"] == ["ops"]
    assert [c.name for c in app.ui.cards] == ["ops.self_image"]  # the old card went with the old setup
    assert app.data[OPS_CONSOLE].self_image is not own
    assert app.data[OPS_CONSOLE].self_image.release_notes == "https://example.org/notes"
    # The addon's metrics were registered again, not refused as duplicates.
    metrics = await client.get("/metrics", headers=bearer("read"))
    assert metrics.status == 200 and "dockmaster_stack_deploy_duration_seconds" in await metrics.text()
