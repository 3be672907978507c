"""End to end on real SSH hosts: check, dry-run, update, reboot-required, verified reboot, back to idle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer
from tests.support.hosts.fixtures import host_state, wait_run

pytestmark = pytest.mark.docker


async def _metrics(client) -> str:  # type: ignore[no-untyped-def]
    resp = await client.get("/metrics", headers=bearer("read"))
    assert resp.status == 200
    return str(await resp.text())


def _version(host) -> str:  # type: ignore[no-untyped-def]
    code, out = host.exec("dpkg-query", "-W", "-f", "${Version}", "dm-demo")
    assert code == 0, out
    return out.strip()


async def test_check_dry_run_update_reboot(make_client, host_fleet, tmp_path: Path) -> None:
    (host,) = host_fleet.start(1)
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", [host])
    conf = host_fleet.host_config(host, known, tags=["lab"])
    name = conf["name"]
    client = await make_client({"hosts": [conf]})

    resp = await client.post(f"/api/v1/hosts/{name}/check", headers=bearer("deploy"))
    assert resp.status == 202, await resp.text()
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run
    state = await host_state(client, name)
    assert state["state"] == "pending_updates" and state["label"] == "pending_updates(1)"
    assert [(p["name"], p["current"], p["new"]) for p in state["pending"]] == [("dm-demo", "1", "2")]
    assert state["inventory"]["os"] == "Debian GNU/Linux" and state["inventory"]["package_manager"] == "apt"
    assert state["inventory"]["docker"] is False
    text = await _metrics(client)
    assert f'dockmaster_host_pending_updates{{host="{name}"}} 1.0' in text
    assert f'dockmaster_host_reboot_required{{host="{name}"}} 0.0' in text
    assert f'dockmaster_host_state{{host="{name}",state="pending_updates"}} 1.0' in text
    assert f'dockmaster_host_state{{host="{name}",state="idle"}} 0.0' in text

    resp = await client.post(f"/api/v1/hosts/{name}/update", json={"dry_run": True}, headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run
    assert "would upgrade dm-demo: 1 -> 2" in run["log"]
    assert _version(host) == "1"
    assert host.exec("test", "-e", "/run/reboot-required")[0] != 0

    resp = await client.post(f"/api/v1/hosts/{name}/update", json={"dry_run": False}, headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run
    assert _version(host) == "2"
    state = await host_state(client, name)
    assert state["state"] == "waiting_reboot"
    assert state["reboot_required"] is True and state["reboot_packages"] == ["dm-demo"]
    before = (state["boot_id"], state["pid1_start"])
    text = await _metrics(client)
    assert f'dockmaster_host_reboot_required{{host="{name}"}} 1.0' in text
    assert f'dockmaster_host_pending_updates{{host="{name}"}} 0.0' in text
    assert f'dockmaster_host_state{{host="{name}",state="waiting_reboot"}} 1.0' in text

    resp = await client.post(f"/api/v1/hosts/{name}/reboot", headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run["log"]
    assert host.reboots == 1
    state = await host_state(client, name)
    assert state["state"] == "idle" and state["reboot_required"] is False
    # A container reboot keeps boot_id: PID 1's start time is what proves the reboot.
    assert state["boot_id"] == before[0] and state["pid1_start"] != before[1]
    assert re.search(r"reboot verified: boot_id=\S+ pid1_start=\S+; test command ran", run["log"])

    app = client.app[APPLIANCE_KEY]
    await app.store.flush()
    rows = await app.store.fetchall("SELECT type, data FROM events WHERE type LIKE 'host%' OR type IN "
                                    "('updates_available', 'reboot_required') ORDER BY id")
    types = [r["type"] for r in rows]
    for expected in ("updates_available", "host_update_succeeded", "reboot_required", "host_rebooted"):
        assert expected in types
    transitions = [r["data"] for r in rows if r["type"] == "host_state_changed"]
    path = [re.search(r'"new_state": "(\w+)"', d).group(1) for d in transitions]  # type: ignore[union-attr]
    assert path == ["querying", "pending_updates", "querying", "pending_updates", "updating", "waiting_reboot",
                    "rebooting", "verifying", "idle"]
    audit = await app.store.fetchall("SELECT action FROM audit WHERE target = ?", (name,))
    assert [a["action"] for a in audit] == ["host.check", "host.update", "host.update", "host.reboot"]

    # The state survives a restart of Dockmaster.
    await client.close()
    client2 = await make_client({"hosts": [conf]})
    assert (await host_state(client2, name))["state"] == "idle"
