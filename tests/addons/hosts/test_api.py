"""Hosts API, UI pages and config validation (no SSH traffic: nothing here connects)."""

from __future__ import annotations

import re

import pytest

from appliance.config import check_config
from tests.conftest import bearer, sign_in

HOSTS = [
    {"name": "web-1", "address": "127.0.0.1", "port": 2201, "user": "dm", "tags": ["web", "prod"],
     "window": "nightly", "auto_reboot": True},
    {"name": "db-1", "address": "127.0.0.1", "port": 2202, "tags": ["db"]},
    {"name": "lab-1", "address": "127.0.0.1", "port": 2203, "tags": ["lab"], "package_manager": "dnf"},
]
CONFIG = {"hosts": HOSTS, "windows": {"nightly": {"cron": "0 2 * * *", "duration": "2h"}},
          "updates": {"groups": {"prod": ["web-1", "db-1"]}, "apply": {"batch_size": 2}}}


async def test_list_filter_and_show(make_client) -> None:
    client = await make_client(CONFIG)
    resp = await client.get("/api/v1/hosts?tag=web", headers=bearer("read"))
    body = await resp.json()
    assert [h["name"] for h in body["hosts"]] == ["web-1"] and body["total"] == 1
    assert body["hosts"][0]["state"] == "idle" and body["hosts"][0]["window"] == "nightly"
    resp = await client.get("/api/v1/hosts?state=failed", headers=bearer("read"))
    assert (await resp.json())["hosts"] == []
    resp = await client.get("/api/v1/hosts?page=2", headers=bearer("read"))
    assert (await resp.json())["hosts"] == []
    resp = await client.get("/api/v1/hosts/db-1", headers=bearer("read"))
    host = await resp.json()
    assert (host["user"], host["upgrade"], host["auto_reboot"]) == ("root", "upgrade", False)
    resp = await client.get("/api/v1/hosts/nope", headers=bearer("read"))
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get("/api/v1/hosts?state=bogus", headers=bearer("read"))
    assert resp.status == 400


async def test_actions_need_deploy_scope_and_valid_state(make_client) -> None:
    client = await make_client(CONFIG)
    resp = await client.post("/api/v1/hosts/web-1/check", headers=bearer("read"))
    assert resp.status == 403
    resp = await client.post("/api/v1/hosts/web-1/check")
    assert resp.status == 401
    resp = await client.post("/api/v1/hosts/web-1/retry", headers=bearer("deploy"))
    assert resp.status == 409 and "not failed or deferred" in (await resp.json())["error"]["message"]
    resp = await client.post("/api/v1/hosts/web-1/update", json={"dry_run": "maybe"}, headers=bearer("deploy"))
    assert resp.status == 400
    resp = await client.post("/api/v1/fleet/update", json={"batch_size": 0}, headers=bearer("deploy"))
    assert resp.status == 400
    resp = await client.post("/api/v1/fleet/update", json={"filter": {"groups": ["nope"]}}, headers=bearer("deploy"))
    assert resp.status == 400 and "unknown groups: nope" in (await resp.json())["error"]["message"]


async def test_ui_pages(make_client) -> None:
    client = await make_client(CONFIG)
    await sign_in(client)
    page = await (await client.get("/hosts?tag=prod")).text()
    assert 'data-host="web-1"' in page and 'data-host="db-1"' not in page
    page = await (await client.get("/hosts/web-1")).text()
    for button in ("host-check", "host-update-dry", "host-update", "host-reboot", "host-retry", "host-acknowledge"):
        assert f'id="{button}"' in page
    assert 'data-confirm="Reboot web-1 and verify it comes back?"' in page
    page = await (await client.get("/fleet?groups=prod&batch_size=1")).text()
    waves = re.findall(r"<li><span class=\"host\">(\S+) ", page)
    assert waves == ["web-1", "db-1"]  # config order, one host per wave
    assert "window nightly" in page
    resp = await client.post("/fleet/update", data={"tags": "prod"}, allow_redirects=False)
    assert resp.status == 403  # no CSRF token


@pytest.mark.parametrize(("hosts", "updates", "expected"), [
    ([{"name": "a", "address": "127.0.0.1", "become": "doas", "package_manager": "zypper"}],
     {"apply": {"max_fail_percentage": 120}, "fan_out": 0},
     ["hosts[0].become: expected one of none, sudo, got 'doas'", "hosts[0].package_manager", "max_fail_percentage",
      "updates.fan_out"]),
    ([{"name": "b", "address": "127.0.0.1", "compose_paths": ["relative/dir"], "upgrade": "full"}], {},
     ["compose path must be absolute", "hosts[0].upgrade"]),
    ([{"name": "c", "address": "127.0.0.1"}, {"name": "c", "address": "127.0.0.2"}], {}, ["duplicate name 'c'"]),
])
def test_config_errors(write_config, hosts, updates, expected) -> None:
    result = check_config(write_config({"hosts": hosts, "updates": updates}))
    text = "\n".join(str(issue) for issue in result.issues)
    for phrase in expected:
        assert phrase in text, text
