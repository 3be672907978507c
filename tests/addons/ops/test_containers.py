"""Container operations on the real engine: list, restart/stop/start, locks, logs, live follow, prune."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import docker
import pytest

from tests.addons.ops.conftest import audit_rows, build_image, unique
from tests.conftest import bearer

pytestmark = pytest.mark.docker


def _started_at(container) -> str:
    container.reload()
    return container.attrs["State"]["StartedAt"]


async def _op(client, name: str, body: dict, scope: str = "deploy"):
    return await client.post(f"/api/v1/ops/{name}", json=body, headers=bearer(scope))


async def test_list_shows_state_health_and_uptime(make_client, ops_config, make_container) -> None:
    stack = unique("dmops-list")
    running = make_container(stack=stack, service="web")
    stopped = make_container(stack=stack, service="db")
    stopped.stop(timeout=1)
    client = await make_client(ops_config)
    resp = await _op(client, "containers_list", {"args": {"stack": stack}}, scope="read")
    assert resp.status == 200
    items = {c["name"]: c for c in (await resp.json())["result"]["containers"]}
    assert set(items) == {running.name, stopped.name}
    assert items[running.name]["state"] == "running" and items[running.name]["uptime"] >= 0
    assert items[running.name]["stack"] == stack and items[running.name]["service"] == "web"
    assert items[stopped.name]["state"] == "exited" and items[stopped.name]["uptime"] is None
    assert items[running.name]["health"] is None


async def test_restart_changes_start_time_and_is_audited(make_client, ops_config, make_container) -> None:
    container = make_container()
    before = _started_at(container)
    client = await make_client(ops_config)
    resp = await _op(client, "container_restart", {"target": container.name, "args": {"timeout": 2}})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "succeeded"
    assert body["result"]["containers"][0]["state"] == "running"
    assert _started_at(container) != before
    rows = await audit_rows(client, "op:container_restart")
    assert rows[0]["actor"] == "token:t-deploy" and rows[0]["target"] == container.name
    assert rows[0]["outcome"] == "succeeded" and rows[0]["details"]["args"] == {"timeout": 2}
    run = await (await client.get(f"/api/v1/runs/{body['run_id']}", headers=bearer("read"))).json()
    assert run["actor"] == "token:t-deploy" and run["status"] == "succeeded" and run["kind"] == "operation"


async def test_two_concurrent_restarts_one_conflict(make_client, ops_config, make_container) -> None:
    container = make_container()
    client = await make_client(ops_config)
    body = {"target": container.name, "args": {"timeout": 2}}
    first, second = await asyncio.gather(_op(client, "container_restart", body),
                                         _op(client, "container_restart", body))
    assert sorted([first.status, second.status]) == [200, 409]
    conflict = first if first.status == 409 else second
    assert (await conflict.json())["error"]["code"] == "conflict"
    rows = await audit_rows(client, "op:container_restart")
    assert sorted(r["outcome"] for r in rows) == ["rejected", "succeeded"]


async def test_stop_and_start_a_stack_service(make_client, ops_config, make_container) -> None:
    stack = unique("dmops-svc")
    web = make_container(stack=stack, service="web")
    other = make_container(stack=stack, service="db")
    client = await make_client(ops_config)
    resp = await _op(client, "container_stop", {"target": f"{stack}/web", "args": {"timeout": 2}})
    assert resp.status == 200, await resp.text()
    web.reload()
    other.reload()
    assert web.status == "exited" and other.status == "running"
    resp = await _op(client, "container_start", {"target": f"{stack}/web"})
    assert resp.status == 200
    web.reload()
    assert web.status == "running"
    resp = await _op(client, "container_start", {"target": f"{stack}/nothing"})
    assert resp.status == 404


async def test_logs_tail_and_since(make_client, ops_config, make_container) -> None:
    container = make_container(command="for i in 1 2 3 4 5; do echo line $i; done; echo '<script>x</script>'; sleep 60")
    client = await make_client(ops_config)

    async def lines() -> list[str]:
        resp = await _op(client, "container_logs", {"target": container.name, "args": {"tail": 3}}, scope="read")
        assert resp.status == 200
        return (await resp.json())["result"]["lines"]

    deadline = time.monotonic() + 10
    while (got := await lines()) != ["line 4", "line 5", "<script>x</script>"] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert got == ["line 4", "line 5", "<script>x</script>"]
    resp = await _op(client, "container_logs", {"target": container.name, "args": {"since": 3600}}, scope="read")
    assert len((await resp.json())["result"]["lines"]) == 6


async def test_follow_streams_a_new_line_within_a_second(make_client, ops_config, make_container) -> None:
    container = make_container()
    client = await make_client(ops_config)
    async with client.ws_connect(f"/api/v1/ops/logs/{container.name}/follow?tail=0", headers=bearer("read")) as ws:
        start = await ws.receive_json(timeout=5)
        assert start["type"] == "start" and start["container"] == container.name
        # The ticker writes every 0.2 s: a fresh line arrives well within a second of asking.
        asked = time.monotonic()
        msg = await ws.receive_json(timeout=1.0)
        assert msg["type"] == "lines" and msg["lines"][0].startswith("tick ")
        assert time.monotonic() - asked < 1.0
        first = int(msg["lines"][-1].split()[1])
        msg = await ws.receive_json(timeout=1.0)
        assert int(msg["lines"][0].split()[1]) == first + 1
    rows = await audit_rows(client, "ops:logs_follow")
    assert rows[0]["actor"] == "token:t-read" and rows[0]["target"] == container.name


async def test_follow_caps_lines_and_unknown_container(make_client, ops_config, make_container) -> None:
    container = make_container(command="sleep 1; head -c 20000 /dev/zero | tr '\\0' a; echo; echo short; sleep 60")
    client = await make_client(ops_config)
    async with client.ws_connect(f"/api/v1/ops/logs/{container.name}/follow?tail=10", headers=bearer("read")) as ws:
        await ws.receive_json(timeout=5)
        got: list[str] = []
        while "short" not in got:
            got += (await ws.receive_json(timeout=5))["lines"]
    long = next(line for line in got if line.startswith("aaa"))
    assert long.endswith("[... line truncated ...]") and len(long) < 8300
    resp = await client.get("/api/v1/ops/logs/dmops-none-such/follow", headers=bearer("read"))
    assert resp.status == 404


async def test_prune_dangling_images_with_label(make_client, ops_config, docker_client, busybox_image) -> None:
    label = unique("dmops-prune")
    tag = f"{label}:x"
    first = build_image(docker_client, busybox_image, tag, "one", labels={"io.dockmaster.test": label})
    build_image(docker_client, busybox_image, tag, "two", labels={"io.dockmaster.test": label})
    client = await make_client(ops_config)
    try:
        resp = await _op(client, "images_prune", {"args": {"label": f"io.dockmaster.test={label}"}}, scope="admin")
        assert resp.status == 200, await resp.text()
        assert first in (await resp.json())["result"]["deleted"]
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(first)
    finally:
        docker_client.images.remove(tag, force=True)


async def test_log_followers_per_container_are_capped(make_client, ops_config, make_container) -> None:
    container = make_container()
    client = await make_client({"ops": {**ops_config["ops"], "max_log_followers": 2}})
    url = f"/api/v1/ops/logs/{container.name}/follow?tail=0"
    first = await client.ws_connect(url, headers=bearer("read"))
    second = await client.ws_connect(url, headers=bearer("deploy"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(url, headers=bearer("admin"))
    assert info.value.status == 429
    status = await (await client.get("/api/v1/status", headers=bearer("read"))).json()
    assert status["limits"]["websockets"]["max_log_followers_per_container"] == 2
    other = make_container()
    async with client.ws_connect(f"/api/v1/ops/logs/{other.name}/follow?tail=0", headers=bearer("admin")) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "start"
    await first.close()
    await second.close()
