"""Package-manager parsers on captured outputs (apt live from the test hosts; others from samples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.hosts.inventory import parse_inventory
from addons.hosts.pkg import apk, apt, dnf, kernel_outdated, pacman, version_key
from addons.hosts.reboot import parse_identity
from addons.hosts.ssh import command_line, known_hosts_name

FIXTURES = Path(__file__).parent / "fixtures"


def _out(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_apt_simulation_lists_old_and_new_versions() -> None:
    upgrades = apt.parse_simulation(_out("apt_simulate_dist_upgrade.txt"))
    assert [(u.name, u.current, u.new, u.arch, u.source) for u in upgrades] == [
        ("dm-demo", "1", "2", "all", "localhost")
    ]
    assert apt.parse_simulation(_out("apt_simulate_nothing.txt")) == []
    fresh = apt.parse_simulation("Inst libfoo1 (1.2-3 Debian:12.5/stable [amd64])")
    assert (fresh[0].name, fresh[0].current, fresh[0].new, fresh[0].arch) == ("libfoo1", None, "1.2-3", "amd64")


def test_apt_lock_and_repair_detection() -> None:
    locked = _out("apt_locked.txt")
    assert apt.lock_holder(locked) == "/var/lib/dpkg/lock-frontend is held by process 31 (python3)"
    assert apt.lock_holder(_out("apt_update.txt")) is None
    assert apt.needs_repair("E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct")
    assert not apt.needs_repair(locked)
    summary = apt.error_summary(_out("apt_upgrade_broken_postinst.txt"))
    assert "dpkg: error processing package dm-demo (--configure):" in summary
    assert summary.endswith("E: Sub-process /usr/bin/dpkg returned an error code (1)")


def test_apt_held_and_reboot_pkgs() -> None:
    assert apt.parse_held("dm-demo\nlinux-image-amd64\n") == ["dm-demo", "linux-image-amd64"]
    assert apt.parse_reboot_pkgs("dm-demo\nlibc6\ndm-demo\n") == ["dm-demo", "libc6"]


def test_dnf_check_update_stops_at_obsoletes() -> None:
    upgrades = dnf.parse_check_update(_out("dnf_check_update.txt"))
    assert [(u.name, u.arch, u.new, u.source) for u in upgrades] == [
        ("kernel", "x86_64", "6.8.9-300.fc40", "updates"),
        ("kernel-core", "x86_64", "6.8.9-300.fc40", "updates"),
        ("openssl-libs", "x86_64", "1:3.2.1-6.fc40", "updates"),
        ("python3-dnf", "noarch", "4.19.2-1.fc40", "updates"),
    ]
    assert dnf.parse_rpm_versions("kernel.x86_64 6.8.5-301.fc40\n") == {"kernel.x86_64": "6.8.5-301.fc40"}


def test_apk_parsers() -> None:
    listed = apk.parse_version_list(_out("apk_version.txt"))
    assert [(u.name, u.current, u.new) for u in listed] == [
        ("busybox", "1.36.1-r15", "1.36.1-r19"),
        ("musl", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5"),
        ("ssl_client", "1.36.1-r15", "1.36.1-r19"),
    ]
    simulated = apk.parse_simulation(_out("apk_upgrade_simulate.txt"))
    assert [u.name for u in simulated] == ["musl", "busybox", "ssl_client"]


def test_pacman_parsers() -> None:
    assert [(u.name, u.current, u.new) for u in pacman.parse_updates(_out("pacman_checkupdates.txt"))] == [
        ("linux", "6.8.9.arch1-1", "6.9.1.arch1-1"), ("openssl", "3.3.0-1", "3.3.1-1"),
    ]
    assert [u.name for u in pacman.parse_updates(_out("pacman_qu.txt"))] == ["linux"]
    assert pacman.parse_ignored(_out("pacman_qu.txt")) == ["nvidia"]


@pytest.mark.parametrize(("running", "installed", "outdated"), [
    ("6.1.0-21-amd64", ["6.1.0-21-amd64", "6.1.0-22-amd64"], True),
    ("6.1.0-110-amd64", ["6.1.0-21-amd64", "6.1.0-110-amd64"], False),
    ("6.8.9-300.fc40.x86_64", ["6.8.9-300.fc40.x86_64"], False),
    ("6.18.44", [], False),
])
def test_kernel_outdated(running: str, installed: list[str], outdated: bool) -> None:
    assert kernel_outdated(running, installed) is outdated
    assert version_key("6.1.0-9") < version_key("6.1.0-10")


def test_identity_inventory_and_quoting() -> None:
    identity = parse_identity("45f4da62-9538-4e26-829e-83a1fa5e2366\n94037\n1795316375\n")
    assert identity.boot_id.startswith("45f4da62") and identity.pid1_start == "1795316375+94037"
    inv = parse_inventory(
        "##os\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n##kernel\n6.1.0-21-amd64\n##uptime\n940.94 1581.25\n"
        "##disk\noverlay 264212084 24337964 82052948 23% /\n##docker\n/usr/bin/docker\nDocker version 24.0.7\n"
        "##osquery\n"
    )
    assert (inv["os"], inv["os_version"], inv["kernel"]) == ("Debian GNU/Linux", "12", "6.1.0-21-amd64")
    assert inv["docker"] is True and inv["docker_version"] == "Docker version 24.0.7"
    assert inv["disk"]["used_percent"] == 9.2 and inv["uptime_seconds"] == 940.94 and inv["osquery"] is False
    assert command_line(["apt-get", "-s", "upgrade; rm -rf /"], become=True, env={"A": "b c"}) == (
        "sudo -n 'A=b c' -- apt-get -s 'upgrade; rm -rf /'"
    )
    assert known_hosts_name("10.0.0.5", 22) == "10.0.0.5" and known_hosts_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"
