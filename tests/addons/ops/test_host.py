"""Host signals: disk usage and low-disk events, probes against 127.0.0.1, journal slices, the page."""

from __future__ import annotations

import re
import shutil

import pytest
from aiohttp import web

from addons.ops.const import CONSOLE_KEY as OPS_CONSOLE
from appliance.keys import APPLIANCE_KEY
from tests.addons.ops.conftest import audit_rows, free_port
from tests.conftest import bearer, sign_in


@pytest.mark.docker
async def test_disk_usage_reports_docker_and_data_dir(make_client, ops_config) -> None:
    client = await make_client(ops_config)
    resp = await client.post("/api/v1/ops/disk_usage", json={}, headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    result = (await resp.json())["result"]
    app = client.server.app[APPLIANCE_KEY]
    assert result["data_dir"]["path"] == str(app.data_dir)
    assert result["data_dir"]["free"] == pytest.approx(shutil.disk_usage(app.data_dir).free, rel=0.05)
    assert result["docker"]["images"]["count"] >= 1
    assert result["docker"]["docker_root_dir"]


@pytest.mark.docker
async def test_low_disk_fires_once_per_crossing(make_client) -> None:
    client = await make_client({"ops": {"disk_threshold": 0, "image_check": None, "disk_check": "0 0 1 1 *"}})
    app = client.server.app[APPLIANCE_KEY]
    fired: list = []
    app.bus.async_listen("low_disk", fired.append)
    console = app.data[OPS_CONSOLE]
    await console.async_disk_tick()
    targets = sorted(e.target.split(":")[0] for e in fired)
    assert targets == ["data_dir", "docker_root"]
    assert all(e.threshold == 0 and e.used_percent > 0 for e in fired)
    await console.async_disk_tick()
    assert len(fired) == 2  # still over: no repeat until it drops below and crosses again
    console.disk.threshold = 100
    await console.async_disk_tick()
    console.disk.threshold = 0
    await console.async_disk_tick()
    assert len(fired) == 4


async def test_probes_dns_tcp_http(make_client, aiohttp_server) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    server = await aiohttp_server(app, host="127.0.0.1")
    closed = free_port()
    client = await make_client({"ops": {"image_check": None, "probes": [
        {"name": "resolver", "type": "dns", "target": "localhost", "timeout": "2s"},
        {"name": "web-tcp", "type": "tcp", "target": f"127.0.0.1:{server.port}"},
        {"name": "web-http", "type": "http", "target": f"http://127.0.0.1:{server.port}/"},
        {"name": "missing", "type": "http", "target": f"http://127.0.0.1:{server.port}/nope"},
        {"name": "closed", "type": "tcp", "target": f"127.0.0.1:{closed}", "timeout": 1},
    ]}})
    resp = await client.post("/api/v1/ops/probes_run", json={}, headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    results = {p["name"]: p for p in (await resp.json())["result"]["probes"]}
    assert results["resolver"]["ok"] and "127.0.0.1" in results["resolver"]["detail"]
    assert results["web-tcp"]["ok"] and results["web-http"] | {"ms": 0} == {
        "name": "web-http", "type": "http", "target": f"http://127.0.0.1:{server.port}/", "ok": True,
        "detail": "HTTP 200", "ms": 0}
    assert not results["missing"]["ok"] and results["missing"]["detail"] == "HTTP 404"
    assert not results["closed"]["ok"]
    resp = await client.post("/api/v1/ops/probes_run", json={"args": {"name": "nope"}}, headers=bearer("read"))
    assert resp.status == 400
    page = await (await client.get("/containers", headers=bearer("read"))).text()
    assert "web-http" in page and "HTTP 404" in page


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"name": "a", "type": "tcp", "target": "127.0.0.1"}, "host:port"),
        ({"name": "a", "type": "http", "target": "ftp://127.0.0.1/"}, "invalid URL"),
        ({"name": "a", "type": "icmp", "target": "127.0.0.1"}, "expected one of dns, tcp, http"),
    ],
)
async def test_probe_config_errors(write_config, probe, message) -> None:
    from appliance.config import check_config

    result = check_config(write_config({"ops": {"probes": [probe]}}))
    assert any(message in str(issue) and "ops.probes[0]" in str(issue) for issue in result.issues), result.issues


async def test_journal_only_for_allowlisted_units(make_client, tmp_path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    client = await make_client({"ops": {"image_check": None, "journal_units": ["docker.service"],
                                        "journal_dir": str(journal)}})
    resp = await client.post("/api/v1/ops/host_journal", json={"target": "sshd.service"}, headers=bearer("admin"))
    assert resp.status == 400
    resp = await client.post("/api/v1/ops/host_journal", json={"target": "docker.service", "args": {"lines": 5}},
                             headers=bearer("admin"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["result"]["lines"] == ["-- No entries --"]
    resp = await client.post("/api/v1/ops/host_journal", json={"target": "docker.service"}, headers=bearer("deploy"))
    assert resp.status == 403
    rows = await audit_rows(client, "op:host_journal")
    assert [r["outcome"] for r in rows] == ["succeeded", "invalid"]


@pytest.mark.docker
async def test_containers_page_restart_with_csrf(make_client, ops_config, make_container) -> None:
    container = make_container()
    client = await make_client(ops_config)
    csrf = await sign_in(client)
    page = await (await client.get("/containers")).text()
    assert f'data-ops-restart="{container.name}"' in page and 'src="/ops/static/ops.js"' in page
    assert re.search(r'<a href="/containers"[^>]*>Containers</a>', page)
    script = await client.get("/ops/static/ops.js")
    assert script.status == 200 and "window.dockmaster.post" in await script.text()
    before = container.attrs["State"]["StartedAt"]
    resp = await client.post("/api/v1/ops/container_restart", json={"target": container.name, "args": {"timeout": 1}},
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    container.reload()
    assert container.attrs["State"]["StartedAt"] != before
    rows = await audit_rows(client, "op:container_restart")
    assert rows[0]["actor"] == "user:admin"


async def test_probe_results_never_show_url_credentials(make_client, aiohttp_server) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    server = await aiohttp_server(app, host="127.0.0.1")
    closed = free_port()
    client = await make_client({"ops": {"image_check": None, "probes": [
        {"name": "auth", "type": "http", "target": f"http://probe:s3cr3t-pw@127.0.0.1:{server.port}/?token=t0k"},
        {"name": "down", "type": "http", "target": f"http://probe:s3cr3t-pw@127.0.0.1:{closed}/", "timeout": 2},
    ]}})
    resp = await client.post("/api/v1/ops/probes_run", json={}, headers=bearer("read"))
    text = await resp.text()
    assert resp.status == 200 and "s3cr3t-pw" not in text and "probe:" not in text and "t0k" not in text
    results = {p["name"]: p for p in (await resp.json())["result"]["probes"]}
    assert results["auth"]["target"] == f"http://127.0.0.1:{server.port}/" and results["auth"]["ok"]
    assert results["down"]["target"] == f"http://127.0.0.1:{closed}/" and not results["down"]["ok"]
    page = await (await client.get("/containers", headers=bearer("read"))).text()
    assert "s3cr3t-pw" not in page
