"""A restricted sudoers rule (a fixed command list with SETENV) is enough for check, dry-run, update and reboot."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.hosts.ssh import command_line
from tests.conftest import bearer
from tests.support.hosts.fixtures import host_state, wait_run

pytestmark = pytest.mark.docker

# The harness installs its reboot in /usr/local/sbin as well, which sudo's secure_path finds first.
RULE = (
    "dm ALL=(root) NOPASSWD:SETENV: /usr/bin/apt-get, /usr/bin/dpkg, /usr/sbin/reboot, /usr/local/sbin/reboot, "
    "/usr/bin/true\n"
)


def test_variables_go_to_sudo_not_to_env() -> None:
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    assert command_line(["apt-get", "update"], become=True, env=env) == (
        "sudo -n DEBIAN_FRONTEND=noninteractive -- apt-get update")
    assert command_line(["apt-get", "-s", "upgrade"], become=False, env=env) == (
        "env DEBIAN_FRONTEND=noninteractive apt-get -s upgrade")
    assert command_line(["reboot"], become=True) == "sudo -n -- reboot"


async def test_fixed_command_list_with_setenv(make_client, host_fleet, tmp_path: Path) -> None:
    (host,) = host_fleet.start(1)
    code, out = host.exec("sh", "-c", f"printf '{RULE}' > /etc/sudoers.d/dm && chmod 440 /etc/sudoers.d/dm "
                                      "&& visudo -cq")
    assert code == 0, out
    # The old `sudo -n -- env VAR=… cmd` form is refused by this rule: it names /usr/bin/env.
    code, out = host.exec("sudo", "-n", "--", "env", "A=1", "apt-get", "-v", user="dm")
    assert code != 0 and "password is required" in out
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", [host])
    conf = host_fleet.host_config(host, known)
    name = conf["name"]
    client = await make_client({"hosts": [conf]})
    for action, body in (("check", None), ("update", {"dry_run": True}), ("update", {"dry_run": False}),
                         ("reboot", None)):
        resp = await client.post(f"/api/v1/hosts/{name}/{action}", json=body, headers=bearer("deploy"))
        assert resp.status == 202, await resp.text()
        run = await wait_run(client, (await resp.json())["run_id"])
        assert run["status"] == "succeeded", (action, run["log"])
    assert host.exec("dpkg-query", "-W", "-f", "${Version}", "dm-demo")[1].strip() == "2"
    state = await host_state(client, name)
    assert state["state"] == "idle" and host.reboots == 1
