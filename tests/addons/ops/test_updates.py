"""Image update checks against Debian's docker-registry on 127.0.0.1, and applying them in the window."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from addons.ops.const import CONSOLE_KEY as OPS_CONSOLE
from appliance.keys import APPLIANCE_KEY
from tests.addons.ops.conftest import audit_rows, build_image, push_image, running_image, unique
from tests.conftest import bearer

pytestmark = pytest.mark.docker


async def _check(client, stack: str) -> dict:
    resp = await client.post("/api/v1/ops/images_check", json={"args": {"stack": stack}}, headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["result"]["stacks"][stack]


async def test_new_push_is_reported_and_applied_in_the_window(
    make_client, docker_client, busybox_image, image_ref, compose_stack
) -> None:
    ref = image_ref
    stacks = [unique("dmops-upa"), unique("dmops-upb")]
    build_image(docker_client, busybox_image, ref, "v1")
    old_digest = push_image(docker_client, ref)
    old_id = docker_client.images.get(ref).id
    for stack in stacks:
        compose_stack(stack, ref)
    client = await make_client({
        "windows": {"dmops-open": {"cron": "* * * * *", "duration": "1h"}},
        "ops": {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *", "auto_update": False},
    })
    app = client.server.app[APPLIANCE_KEY]
    fired: list = []
    app.bus.async_listen("image_update_available", fired.append)
    status = await _check(client, stacks[0])
    assert status["update_available"] is False
    assert status["images"][0]["status"] == "current" and status["images"][0]["local_digest"] == old_digest

    new_id = build_image(docker_client, busybox_image, ref, "v2")
    new_digest = push_image(docker_client, ref)
    assert new_digest != old_digest and new_id != old_id
    for stack in stacks:
        status = await _check(client, stack)
        assert status["update_available"] is True
        assert status["images"][0] | {"error": None} == {
            "image": ref, "local_digest": old_digest, "remote_digest": new_digest,
            "status": "update_available", "error": None}
    assert sorted(e.stack for e in fired) == sorted(stacks)
    updates = await (await client.get("/api/v1/ops/updates", headers=bearer("read"))).json()
    assert set(stacks) <= set(updates["updates_available"])

    # Apply in the window: pull + recreate each stack; the containers then run the new image.
    for stack in stacks:
        resp = await client.post("/api/v1/ops/stack_update", json={"target": stack}, headers=bearer("deploy"))
        assert resp.status == 202, await resp.text()
        run_id = (await resp.json())["run_id"]
        deadline = time.monotonic() + 60
        while run_id in app.runs.active and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        run = await app.runs.get(run_id)
        assert run["status"] == "succeeded", run["log"]
        assert running_image(docker_client, stack) == new_id
        assert (await _check(client, stack))["update_available"] is False
    rows = await audit_rows(client, "op:stack_update")
    assert {r["target"] for r in rows} == set(stacks) and {r["actor"] for r in rows} == {"token:t-deploy"}


@pytest.mark.parametrize("window_open", [True, False], ids=["window-open", "window-closed"])
async def test_auto_update_runs_only_inside_the_window(
    make_client, docker_client, busybox_image, image_ref, compose_stack, window_open
) -> None:
    ref = image_ref
    stack = unique("dmops-upw")
    build_image(docker_client, busybox_image, ref, "v1")
    push_image(docker_client, ref)
    compose_stack(stack, ref)
    old_id = running_image(docker_client, stack)
    new_id = build_image(docker_client, busybox_image, ref, "v2")
    push_image(docker_client, ref)
    cron = "* * * * *" if window_open else "0 0 1 1 *"
    client = await make_client({
        "windows": {"dmops-win": {"cron": cron, "duration": "1h"}},
        "ops": {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *", "auto_update": True,
                "update_window": "dmops-win"},
    })
    app = client.server.app[APPLIANCE_KEY]
    # A read-scope check reports the update but never recreates anything.
    assert (await _check(client, stack))["update_available"] is True
    assert await app.runs.list(kind="operation", target=f"stack_update:{stack}") == []
    await app.data[OPS_CONSOLE].async_image_tick()  # the scheduled check queues the update
    runs = await app.runs.list(kind="operation", target=f"stack_update:{stack}")
    assert len(runs) == 1 and runs[0]["actor"] == "system:ops:auto-update"
    if window_open:
        deadline = time.monotonic() + 60
        while runs[0]["id"] in app.runs.active and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert (await app.runs.get(runs[0]["id"]))["status"] == "succeeded"
        assert running_image(docker_client, stack) == new_id
        return
    assert runs[0]["status"] == "queued"
    assert runs[0]["reason"].startswith("waiting for window dmops-win at ")
    await asyncio.sleep(0.5)
    assert running_image(docker_client, stack) == old_id
    # A second check does not queue a second update for the same stack.
    await app.data[OPS_CONSOLE].async_image_tick()
    assert len(await app.runs.list(kind="operation", target=f"stack_update:{stack}")) == 1


async def test_a_stacks_own_window_holds_back_its_image_update(
    make_client, docker_client, busybox_image, image_ref, compose_stack, tmp_path: Path
) -> None:
    from tests.support.git import GitRemote

    ref = image_ref
    stack = unique("dmops-own")
    build_image(docker_client, busybox_image, ref, "v1")
    push_image(docker_client, ref)
    compose_stack(stack, ref)
    old_id = running_image(docker_client, stack)
    build_image(docker_client, busybox_image, ref, "v2")
    push_image(docker_client, ref)
    remote = GitRemote(tmp_path / "git")
    remote.commit({"stacks/own/compose.yaml": f"services:\n  web:\n    image: {ref}\n"}, "The stack")
    # No update window for ops as a whole: only the stack's own `window:` can hold the update back.
    client = await make_client({
        "windows": {"dmops-closed": {"cron": "0 0 1 1 *", "duration": "1h"}},
        "repos": [{"name": "infra", "url": str(remote.bare)}],
        "stacks": [{"name": stack, "repo": "infra", "path": "stacks/own", "window": "dmops-closed",
                    "auto_deploy": False}],
        "ops": {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *", "auto_update": True},
    })
    app = client.server.app[APPLIANCE_KEY]
    await app.data[OPS_CONSOLE].async_image_tick()
    runs = await app.runs.list(kind="operation", target=f"stack_update:{stack}")
    assert len(runs) == 1
    assert runs[0]["status"] == "queued"
    assert runs[0]["reason"].startswith("waiting for window dmops-closed at "), runs[0]["reason"]
    await asyncio.sleep(0.5)
    assert running_image(docker_client, stack) == old_id
