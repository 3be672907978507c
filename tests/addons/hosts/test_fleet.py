"""Fleet waves on real SSH hosts: stop on max_fail_percentage, wait for the window, then run."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer
from tests.support.hosts.fixtures import host_state, wait_run, wait_state

pytestmark = pytest.mark.docker


def _version(host) -> str:  # type: ignore[no-untyped-def]
    return host.exec("dpkg-query", "-W", "-f", "${Version}", "dm-demo")[1].strip()


async def test_fleet_stops_after_failing_wave(make_client, host_fleet, tmp_path: Path) -> None:
    hosts = host_fleet.start(6, broken={3})  # the 4th host's dm-demo 2 fails in postinst: wave 2
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", hosts)
    confs = [host_fleet.host_config(h, known, tags=["web"]) for h in hosts]
    client = await make_client({
        "hosts": confs,
        "updates": {"apply": {"batch_size": 2, "max_fail_percentage": 0},
                    "groups": {"all": [c["name"] for c in confs]}},
    })
    body = {"batch_size": 2, "delay": "0s", "max_fail_percentage": 0, "dry_run": False,
            "filter": {"tags": ["web"], "groups": [], "hosts": [], "exclude": []}}
    resp = await client.post("/api/v1/fleet/update", json=body, headers=bearer("deploy"))
    assert resp.status == 202, await resp.text()
    run = await wait_run(client, (await resp.json())["run_id"], timeout=180)
    assert run["status"] == "failed"
    assert run["reason"].startswith("stopped after wave 2/3: 1 of 6 host(s) failed")
    assert "max_fail_percentage 0%" in run["reason"] and confs[3]["name"] in run["reason"]
    assert run["details"]["not_started"] == [confs[4]["name"], confs[5]["name"]]
    assert [_version(h) for h in hosts] == ["2", "2", "2", "2", "1", "1"]  # host 3: unpacked, not configured
    failed = await host_state(client, confs[3]["name"])
    assert failed["state"] == "failed" and "dm-demo" in failed["error"] and failed["previous"] == "updating"
    assert (await host_state(client, confs[4]["name"]))["state"] == "idle"


async def test_apply_waits_for_window(make_client, host_fleet, tmp_path: Path) -> None:
    (host,) = host_fleet.start(1)
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", [host])
    conf = host_fleet.host_config(host, known, window="nightly")
    client = await make_client({
        "hosts": [conf], "updates": {}, "windows": {"nightly": {"cron": "0 2 * * *", "duration": "1h"}},
    })
    engine = client.app[APPLIANCE_KEY].data[HOSTS_ENGINE]
    clock = {"now": datetime(2030, 1, 1, 1, 59, 30, tzinfo=UTC)}
    engine.now = lambda: clock["now"]
    engine.window_poll = 0.1
    resp = await client.post("/api/v1/fleet/update", json={"filter": {"hosts": [conf["name"]]}},
                             headers=bearer("deploy"))
    fleet_run = (await resp.json())["run_id"]
    state = await wait_state(client, conf["name"], "queued")
    assert state["reason"] == "waiting for window nightly at 2030-01-01 02:00 UTC"
    runs = await (await client.get(f"/api/v1/runs?kind=host_update&target={conf['name']}",
                                   headers=bearer("read"))).json()
    host_run = runs["runs"][0] if isinstance(runs, dict) else runs[0]
    assert host_run["status"] == "queued" and host_run["reason"].startswith("waiting for window nightly")
    await asyncio.sleep(0.5)
    assert _version(host) == "1"  # nothing started outside the window
    clock["now"] = datetime(2030, 1, 1, 2, 0, 5, tzinfo=UTC)
    run = await wait_run(client, fleet_run, timeout=120)
    assert run["status"] == "succeeded", run
    assert _version(host) == "2"
    assert (await host_state(client, conf["name"]))["state"] == "waiting_reboot"


async def test_dry_run_fleet_changes_nothing(make_client, host_fleet, tmp_path: Path) -> None:
    hosts = host_fleet.start(2)
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", hosts)
    confs = [host_fleet.host_config(h, known) for h in hosts]
    client = await make_client({"hosts": confs, "updates": {"groups": {"pair": [c["name"] for c in confs]}}})
    resp = await client.post("/api/v1/fleet/update", json={"dry_run": True, "filter": {"groups": ["pair"]},
                                                           "batch_size": 1}, headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded" and run["details"]["waves"] == [[confs[0]["name"]], [confs[1]["name"]]]
    assert (run["kind"], run["trigger"], run["actor"]) == ("fleet_update", "api", "token:t-deploy")
    assert [_version(h) for h in hosts] == ["1", "1"]
    app = client.app[APPLIANCE_KEY]
    await app.store.flush()
    audit = await app.store.fetchall("SELECT actor, action, target, details FROM audit WHERE action = 'fleet.update'")
    assert [(a["actor"], a["target"]) for a in audit] == [("token:t-deploy", "fleet")]  # written once, by the service
    details = json.loads(audit[0]["details"])
    assert details == {"run_id": run["id"], "dry_run": True,
                       "filter": {"tags": [], "groups": ["pair"], "hosts": [], "exclude": []}}
    resp = await client.post("/api/v1/fleet/update", json={"filter": {"hosts": ["nope"]}}, headers=bearer("deploy"))
    assert resp.status == 400 and "unknown hosts: nope" in (await resp.json())["error"]["message"]
