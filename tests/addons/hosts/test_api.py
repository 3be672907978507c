"""Hosts API, UI pages and config validation (no SSH traffic: nothing here connects)."""

from __future__ import annotations

import re

import pytest

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from appliance.config import check_config
from appliance.keys import APPLIANCE_KEY
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


async def test_hosts_inherit_hosts_defaults(make_client, tmp_path) -> None:
    key = tmp_path / "fleet"
    key.write_text("not read before a connect\n")
    config = {**CONFIG, "hosts_defaults": {"user": "admin", "ssh_key": str(key), "become": "sudo",
                                           "window": "nightly", "port": 2222}}
    client = await make_client(config)
    db = await (await client.get("/api/v1/hosts/db-1", headers=bearer("read"))).json()
    assert (db["user"], db["port"], db["window"]) == ("admin", 2202, "nightly")  # its own port wins
    web = await (await client.get("/api/v1/hosts/web-1", headers=bearer("read"))).json()
    assert web["user"] == "dm"  # a host's own value wins
    engine = client.app[APPLIANCE_KEY].data[HOSTS_ENGINE]
    assert engine.conf["lab-1"]["become"] == "sudo" and str(engine.conf["lab-1"]["ssh_key"]) == str(key)
    assert engine.conf["lab-1"]["host_key_check"] == "strict"


async def test_without_hosts_defaults_the_built_in_defaults_hold(make_client) -> None:
    client = await make_client(CONFIG)
    engine = client.app[APPLIANCE_KEY].data[HOSTS_ENGINE]
    conf = engine.conf["db-1"]
    assert (conf["user"], conf["become"], conf["host_key_check"]) == ("root", "none", "strict")
    assert conf["port"] == 2202 and conf.get("window") is None


async def test_invalid_hosts_defaults_disable_hosts(make_client) -> None:
    client = await make_client({**CONFIG, "hosts_defaults": {"become": "doas"}})
    errors = client.app[APPLIANCE_KEY].addon_errors
    assert "hosts_defaults" in errors and "hosts_defaults: has errors" in errors["hosts"].error


async def test_groups_and_tags(make_client) -> None:
    client = await make_client(CONFIG)
    resp = await client.get("/api/v1/groups", headers=bearer("read"))
    assert resp.status == 200
    assert (await resp.json())["groups"] == [
        {"name": "prod", "hosts": ["web-1", "db-1"], "states": {"web-1": "idle", "db-1": "idle"}}]
    resp = await client.get("/api/v1/tags", headers=bearer("read"))
    assert (await resp.json())["tags"] == [
        {"name": "db", "hosts": ["db-1"]}, {"name": "lab", "hosts": ["lab-1"]},
        {"name": "prod", "hosts": ["web-1"]}, {"name": "web", "hosts": ["web-1"]}]
    assert (await client.get("/api/v1/tags")).status == 401
    assert (await client.get("/api/v1/groups")).status == 401
    resp = await client.get("/api/v1/hosts?q=LAB", headers=bearer("read"))
    assert [h["name"] for h in (await resp.json())["hosts"]] == ["lab-1"]


async def test_hosts_page_searches_and_pages(make_client) -> None:
    many = [{"name": f"node-{i:03d}", "address": "127.0.0.1", "port": 3000 + i,
             "tags": ["rack-a" if i % 2 else "rack-b"]} for i in range(120)]
    client = await make_client({"hosts": many})
    await sign_in(client)
    page = await (await client.get("/hosts")).text()
    assert page.count('data-host="') == 50 and 'data-host="node-049"' in page
    assert "120 of 120 host(s) · page 1 of 3" in page and 'id="hosts-next"' in page and 'id="hosts-prev"' not in page
    page = await (await client.get("/hosts?page=3")).text()
    assert page.count('data-host="') == 20 and 'data-host="node-119"' in page and 'id="hosts-next"' not in page
    page = await (await client.get("/hosts?q=node-11&tag=rack-a")).text()
    assert re.findall(r'data-host="([^"]+)"', page) == [f"node-{i}" for i in range(111, 120, 2)]
    assert "5 of 120 host(s)" in page and "page 1" not in page
    page = await (await client.get("/hosts?q=rack-b&page=2")).text()
    assert page.count('data-host="') == 10 and "60 of 120 host(s) · page 2 of 2" in page
    assert 'href="/hosts?q=rack-b&amp;tag=&amp;page=1"' in page
    page = await (await client.get("/hosts?q=nothing-like-this")).text()
    assert "No hosts match." in page
