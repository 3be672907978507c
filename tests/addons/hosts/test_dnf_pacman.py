"""dnf and pacman on live SSH hosts: detection, check, dry-run and upgrade against local rpm and pacman repos.

The hosts are Debian containers whose package manager is Debian's build of dnf (rpm database, a
createrepo_c repository) or pacman (a repo-add repository); see tests/support/hosts/image.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import bearer
from tests.support.hosts.fixtures import host_state, wait_run

pytestmark = pytest.mark.docker

# The installed version of dm-demo as each package manager reports it.
_QUERY = {
    "dnf": ("rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "dm-demo"),
    "pacman": ("pacman", "-Q", "dm-demo"),
}


def _version(host) -> str:  # type: ignore[no-untyped-def]
    code, out = host.exec(*_QUERY[host.flavour])
    assert code == 0, out
    return out.split()[-1]


@pytest.mark.parametrize("flavour", ["dnf", "pacman"])
async def test_check_dry_run_and_upgrade(flavour: str, make_client, host_fleet, tmp_path: Path) -> None:
    (host,) = host_fleet.start(1, flavour=flavour)
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", [host])
    conf = host_fleet.host_config(host, known)  # package_manager: auto
    name = conf["name"]
    client = await make_client({"hosts": [conf]})
    assert _version(host) == "1-1"

    resp = await client.post(f"/api/v1/hosts/{name}/check", headers=bearer("deploy"))
    assert resp.status == 202, await resp.text()
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run["log"]
    state = await host_state(client, name)
    assert state["inventory"]["package_manager"] == flavour
    assert state["state"] == "pending_updates" and state["label"] == "pending_updates(1)"
    assert [(p["name"], p["current"], p["new"]) for p in state["pending"]] == [("dm-demo", "1-1", "2-1")]

    resp = await client.post(f"/api/v1/hosts/{name}/update", json={"dry_run": True}, headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run["log"]
    assert "would upgrade dm-demo: 1-1 -> 2-1" in run["log"]
    assert _version(host) == "1-1"

    resp = await client.post(f"/api/v1/hosts/{name}/update", json={"dry_run": False}, headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run["log"]
    assert _version(host) == "2-1"
    state = await host_state(client, name)
    assert state["state"] == "idle", state
    assert state["reboot_required"] is False and state["pending"] == []

    # Checked again: nothing left to upgrade.
    resp = await client.post(f"/api/v1/hosts/{name}/check", headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run["log"]
    assert (await host_state(client, name))["state"] == "idle"
