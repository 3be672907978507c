"""Host keys: unknown or changed keys are refused with a clear message and nothing runs."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from tests.conftest import bearer
from tests.support.hosts.fixtures import host_state, wait_run

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def key_host(host_fleet):  # type: ignore[no-untyped-def]
    """One host shared by the key tests (none of them changes it)."""
    return host_fleet.start(1)[0]


def _logins(host) -> int:  # type: ignore[no-untyped-def]
    return host.container.logs().decode().count("Accepted publickey for dm")


async def _check(make_client, conf) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    client = await make_client({"hosts": [conf]})
    resp = await client.post(f"/api/v1/hosts/{conf['name']}/check", headers=bearer("deploy"))
    run = await wait_run(client, (await resp.json())["run_id"], timeout=60)
    return run, await host_state(client, conf["name"])


async def test_unknown_key_refused(make_client, host_fleet, key_host, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    logins = _logins(key_host)
    run, state = await _check(make_client, host_fleet.host_config(key_host, known))
    assert run["status"] == "failed"
    assert "is unknown" in run["error"] and "host_key_check is strict" in run["error"]
    assert state["state"] == "failed" and state["previous"] == "querying" and "unknown" in state["error"]
    assert _logins(key_host) == logins  # never authenticated: nothing ran
    assert known.read_text() == ""


async def test_changed_key_refused(make_client, host_fleet, key_host, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{key_host.port} {other}\n")
    logins = _logins(key_host)
    run, _ = await _check(make_client, host_fleet.host_config(key_host, known, host_key_check="accept-new"))
    assert run["status"] == "failed"
    assert "has CHANGED" in run["error"] and "known_hosts" in run["error"]
    assert _logins(key_host) == logins
    assert known.read_text() == f"[127.0.0.1]:{key_host.port} {other}\n"  # accept-new never overwrites


async def test_accept_new_records_key(make_client, host_fleet, key_host, tmp_path: Path) -> None:
    known = tmp_path / "keys" / "known_hosts"
    run, state = await _check(make_client, host_fleet.host_config(key_host, known, host_key_check="accept-new"))
    assert run["status"] == "succeeded", run
    assert known.read_text().split() == key_host.known_hosts_line.split()
    assert state["state"] == "pending_updates"


async def test_retry_and_acknowledge(make_client, host_fleet, key_host, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    conf = host_fleet.host_config(key_host, known)
    other = {**conf, "name": conf["name"] + "-b", "known_hosts": str(tmp_path / "empty_known_hosts")}
    client = await make_client({"hosts": [conf, other]})
    name = conf["name"]
    for host in (name, other["name"]):
        resp = await client.post(f"/api/v1/hosts/{host}/check", headers=bearer("deploy"))
        await wait_run(client, (await resp.json())["run_id"])
        assert (await host_state(client, host))["state"] == "failed"
    host_fleet.write_known_hosts(known, [key_host])  # the operator fixed known_hosts
    resp = await client.post(f"/api/v1/hosts/{name}/retry", headers=bearer("deploy"))
    assert resp.status == 202
    run = await wait_run(client, (await resp.json())["run_id"])
    assert run["status"] == "succeeded" and run["reason"] == "retry #1 of check"
    state = await host_state(client, name)
    assert state["state"] == "pending_updates" and state["retries"] == 1
    resp = await client.post(f"/api/v1/hosts/{name}/acknowledge", headers=bearer("deploy"))
    assert resp.status == 409  # nothing to acknowledge: not failed
    resp = await client.post(f"/api/v1/hosts/{other['name']}/acknowledge", headers=bearer("deploy"))
    assert resp.status == 200
    body = await resp.json()
    assert body["state"] == "idle" and body["error"] is None and "acknowledged: host key" in body["reason"]
