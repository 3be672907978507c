"""The `updates:` block is a config domain only: it hands its block to the hosts addon, which schedules the fleet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from appliance.errors import Forbidden
from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer

HOSTS = [{"name": "web-1", "address": "127.0.0.1", "port": 1, "tags": ["web"]},
         {"name": "db-1", "address": "127.0.0.1", "port": 2}]
FLEET_ROUTES = {("GET", "/api/v1/groups"), ("POST", "/api/v1/fleet/update"), ("GET", "/fleet"),
                ("POST", "/fleet/update")}


def _routes(app: Any) -> set[tuple[str, str]]:
    return {(spec.method, spec.path) for spec in app.api.routes}


async def test_the_block_schedules_the_hosts_fleet(make_client: Any) -> None:
    client = await make_client({"hosts": HOSTS, "updates": {
        "check": "0 */4 * * *", "apply": {"cron": "30 2 * * 6", "batch_size": 2, "delay": "60s"},
        "groups": {"prod": ["web-1", "db-1"]}, "fan_out": 7}})
    app = client.app[APPLIANCE_KEY]
    assert {"hosts", "updates"} <= set(app.loaded_addons) and not app.addon_errors
    assert app.data[HOSTS_ENGINE].fan_out == 7
    jobs = app.scheduler.jobs
    assert (jobs["updates.check"].cron, jobs["updates.check"].key) == ("0 */4 * * *", "updates:check")
    assert (jobs["updates.apply"].cron, jobs["updates.apply"].key) == ("30 2 * * 6", "updates:apply")
    assert _routes(app) >= FLEET_ROUTES
    service = app.services.get("hosts.fleet_update")
    assert service.scope == "deploy"
    assert service.schema({}) == {"dry_run": False, "filter": {"tags": [], "groups": [], "hosts": [], "exclude": []}}
    assert service.schema({"delay": "1m"})["delay"] == timedelta(minutes=1)
    with pytest.raises(Forbidden, match="needs the deploy scope"):
        await app.services.async_call("hosts.fleet_update", {}, actor="reader", scopes=("read",))
    resp = await client.post("/api/v1/fleet/update", json={}, headers=bearer("read"))
    assert resp.status == 403
    # The service checks the filter before a run starts; nothing is audited for a refused call.
    resp = await client.post("/api/v1/fleet/update", json={"filter": {"hosts": ["nope"]}}, headers=bearer("deploy"))
    assert resp.status == 400 and (await resp.json())["error"]["message"] == "unknown hosts: nope"
    await app.store.flush()
    assert await app.store.fetchall("SELECT * FROM audit WHERE action = 'fleet.update'") == []


async def test_without_the_block_the_fleet_is_not_scheduled(make_client: Any) -> None:
    client = await make_client({"hosts": HOSTS})
    app = client.app[APPLIANCE_KEY]
    assert "hosts" in app.loaded_addons and "updates" not in app.loaded_addons
    assert not FLEET_ROUTES & _routes(app)
    assert not app.services.has("hosts.fleet_update")
    assert "updates.check" not in app.scheduler.jobs and "updates.apply" not in app.scheduler.jobs
    assert (await client.get("/api/v1/groups", headers=bearer("read"))).status == 404


async def test_without_apply_cron_only_checks_are_scheduled(make_client: Any) -> None:
    client = await make_client({"updates": {}})  # hosts is set up as its dependency, with no hosts
    app = client.app[APPLIANCE_KEY]
    assert {"hosts", "updates"} <= set(app.loaded_addons)
    assert app.scheduler.jobs["updates.check"].cron == "0 */6 * * *" and "updates.apply" not in app.scheduler.jobs
    resp = await client.post("/api/v1/fleet/update", json={}, headers=bearer("deploy"))
    assert resp.status == 400 and (await resp.json())["error"]["message"] == "the filter matches no host"


async def test_a_group_naming_an_unknown_host_disables_updates_only(make_client: Any) -> None:
    client = await make_client({"hosts": HOSTS, "updates": {"groups": {"prod": ["web-1", "web-9"]}}})
    app = client.app[APPLIANCE_KEY]
    assert "hosts" in app.loaded_addons and "updates" not in app.loaded_addons
    assert "group 'prod' names unknown hosts: web-9" in app.addon_errors["updates"].error
    assert not app.services.has("hosts.fleet_update") and "updates.check" not in app.scheduler.jobs
