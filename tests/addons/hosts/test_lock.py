"""A held dpkg lock defers the host; once it is released the next run succeeds."""

from __future__ import annotations

import shlex
from pathlib import Path

import asyncssh
import pytest

from tests.conftest import bearer
from tests.support.hosts.fixtures import host_state, wait_run

pytestmark = pytest.mark.docker

# apt takes fcntl locks, so the holder must too (flock(1) locks would not conflict with apt).
HOLD_LOCK = (
    "import fcntl, time; f = open('/var/lib/dpkg/lock-frontend', 'w'); "
    "fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)"
)


async def test_held_lock_defers_then_succeeds(make_client, host_fleet, tmp_path: Path) -> None:
    (host,) = host_fleet.start(1)
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", [host])
    conf = host_fleet.host_config(host, known, timeouts={"lock": "2s"})
    name = conf["name"]
    client = await make_client({"hosts": [conf]})
    async with asyncssh.connect("127.0.0.1", port=host.port, username="dm", known_hosts=str(known),
                                client_keys=[str(host_fleet.key_path)]) as conn:
        holder = await conn.create_process(shlex.join(["sudo", "-n", "python3", "-c", HOLD_LOCK]))
        assert (await holder.stdout.readline()).strip() == "locked"
        resp = await client.post(f"/api/v1/hosts/{name}/update", json={}, headers=bearer("deploy"))
        run = await wait_run(client, (await resp.json())["run_id"])
        assert run["status"] == "skipped", run
        assert "deferred" in run["error"] and "held by process" in run["error"]
        state = await host_state(client, name)
        assert state["state"] == "deferred" and "lock-frontend is held by process" in state["reason"]
        _, out = host.exec("dpkg-query", "-W", "-f", "${Version}", "dm-demo")
        assert out == "1"
        holder.terminate()
        await conn.run(shlex.join(["sudo", "-n", "pkill", "-f", "fcntl.lockf"]))
    resp = await client.post(f"/api/v1/hosts/{name}/retry", headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded", run["log"]
    assert host.exec("dpkg-query", "-W", "-f", "${Version}", "dm-demo")[1] == "2"
    assert (await host_state(client, name))["state"] == "waiting_reboot"
