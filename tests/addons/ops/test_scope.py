"""Read scope reads only what it should: unmanaged containers are hidden or need admin, nothing changes."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import bearer

pytestmark = pytest.mark.docker


async def _op(client, name: str, body: dict, scope: str):
    return await client.post(f"/api/v1/ops/{name}", json=body, headers=bearer(scope))


async def test_by_default_only_managed_containers_are_shown(make_client, ops_config, make_container) -> None:
    managed = make_container(command="echo managed-line; sleep 60")
    foreign = make_container(command="echo foreign-line; sleep 60", managed=False)
    client = await make_client(ops_config)
    resp = await _op(client, "containers_list", {}, "admin")
    names = {c["name"] for c in (await resp.json())["result"]["containers"]}
    assert managed.name in names and foreign.name not in names
    for scope in ("read", "admin"):
        resp = await _op(client, "container_logs", {"target": foreign.name}, scope)
        assert resp.status == 404, scope
    assert (await _op(client, "container_logs", {"target": managed.name}, "read")).status == 200


async def test_unmanaged_logs_and_actions_need_admin(make_client, ops_config, make_container) -> None:
    managed = make_container(command="echo managed-line; sleep 60")
    foreign = make_container(command="echo foreign-line; sleep 60", managed=False)
    client = await make_client({"ops": {**ops_config["ops"], "containers": "all"}})
    resp = await _op(client, "container_logs", {"target": foreign.name}, "read")
    assert resp.status == 403 and "admin" in (await resp.json())["error"]["message"]
    assert (await _op(client, "container_logs", {"target": foreign.name}, "deploy")).status == 403
    resp = await _op(client, "container_logs", {"target": foreign.name}, "admin")
    assert resp.status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(f"/api/v1/ops/logs/{foreign.name}/follow", headers=bearer("read"))
    assert info.value.status == 403
    foreign.reload()
    started = foreign.attrs["State"]["StartedAt"]
    for scope in ("read", "deploy"):
        resp = await _op(client, "container_restart", {"target": foreign.name, "args": {"timeout": 0}}, scope)
        assert resp.status == 403, scope
    foreign.reload()
    assert foreign.attrs["State"]["StartedAt"] == started
    # A read token changes no container at all, managed ones included.
    for action in ("container_restart", "container_stop", "container_start"):
        assert (await _op(client, action, {"target": managed.name}, "read")).status == 403
    managed.reload()
    assert managed.status == "running"
