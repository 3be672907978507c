"""Benchmark: "check for updates" on N SSH test hosts at fan-out 20 and 5, next to ansible-core.

Usage: .venv/bin/python -m bench.hosts_check [--hosts 50] [--dnf-hosts 10] [--pacman-hosts 10]
       [--ansible /tmp/dm-ansible-venv/bin/ansible]
Loopback only: the hosts are the test containers of tests/support/hosts on 127.0.0.1 ports: apt
hosts, and hosts whose package manager is Debian's dnf (local rpm repo) or pacman (local repo-add
repo). ansible-core runs the same read-only check on the same hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import docker
import yaml

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from appliance.config import check_config
from appliance.http.app import async_build_appliance
from tests.support.hosts.fleet import HostFleet

TIME_LIMIT = 900  # the whole benchmark stops after 15 minutes


def rss_kb() -> int:
    """Resident memory of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def write_config(folder: Path, fleet: HostFleet, known: Path, fan_out: int) -> Path:
    """A config with every started host, for one fresh appliance."""
    config = {
        "dockmaster": {"name": "bench", "data_dir": str(folder / "data"), "time_zone": "UTC"},
        "http": {"host": "127.0.0.1", "port": 8099},
        "auth": {"users": [], "tokens": []},
        "hosts": [fleet.host_config(h, known) for h in fleet.hosts],
        "updates": {"fan_out": fan_out},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def dockmaster_round(folder: Path, fleet: HostFleet, known: Path, fan_out: int) -> dict[str, Any]:
    """Check every host once at `fan_out`; wall time, slowest host run, memory growth per host."""
    folder.mkdir(parents=True, exist_ok=True)
    app = await async_build_appliance(check_config(write_config(folder, fleet, known, fan_out)), oneshot=True)
    engine = app.data[HOSTS_ENGINE]
    before = rss_kb()
    started = time.perf_counter()
    results = await engine.async_check_all(trigger="manual")
    wall = time.perf_counter() - started
    growth = rss_kb() - before
    runs = await app.runs.list(kind="host_check", limit=1000)
    durations = [r["finished"] - r["started"] for r in runs if r["finished"] and r["started"]]
    await app.async_stop()
    await app.store.async_close()
    failed = [n for n, s in results.items() if s != "succeeded"]
    return {"wall": wall, "slowest_in_run": max(durations), "growth_kb_per_host": growth / len(fleet.hosts),
            "failed": failed}


async def single_host_times(folder: Path, fleet: HostFleet, known: Path, sample: int) -> dict[str, list[float]]:
    """Check up to `sample` hosts of each package manager one at a time: the single-host baseline."""
    folder.mkdir(parents=True, exist_ok=True)
    app = await async_build_appliance(check_config(write_config(folder, fleet, known, 1)), oneshot=True)
    engine = app.data[HOSTS_ENGINE]
    times: dict[str, list[float]] = defaultdict(list)
    for host in fleet.hosts:
        if len(times[host.flavour]) >= sample:
            continue
        started = time.perf_counter()
        await engine.async_check_all(trigger="manual", names=[fleet.host_config(host, known)["name"]])
        times[host.flavour].append(time.perf_counter() - started)
    await app.async_stop()
    await app.store.async_close()
    return times


# The read-only check ansible runs per package manager: the same commands Dockmaster's check runs
# (apt's index refresh aside); dnf's exit 100 and pacman -Qu's exit 1 mean "updates" and "none".
ANSIBLE_CHECKS = {
    "apt": ("apt-get -s upgrade", False),
    "dnf": ("dnf -q check-update || [ $? -eq 100 ]", True),
    "pacman": ("pacman -Sy >/dev/null && { pacman -Qu; [ $? -le 1 ]; }", True),
}


def ansible_round(ansible: str, fleet: HostFleet, known: Path, folder: Path, forks: int) -> float | None:
    """The same read-only check with ansible-core on every host, the command chosen by its package manager."""
    groups: dict[str, Any] = {}
    for host in fleet.hosts:
        command, become = ANSIBLE_CHECKS[host.flavour]
        group = groups.setdefault(host.flavour, {"hosts": {}, "vars": {"check_cmd": command,
                                                                         "ansible_become": become}})
        group["hosts"][host.name] = {"ansible_host": "127.0.0.1", "ansible_port": host.port}
    inventory = folder / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"all": {"children": groups, "vars": {
        "ansible_user": "dm", "ansible_ssh_private_key_file": str(fleet.key_path),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes",
    }}}))
    (folder / "ansible.cfg").write_text("[defaults]\n")
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_CONFIG": str(folder / "ansible.cfg"),
           "ANSIBLE_LOCAL_TEMP": str(folder / "ansible-tmp")}
    started = time.perf_counter()
    done = subprocess.run(
        [ansible, "all", "-i", str(inventory), "-f", str(forks), "-o", "-m", "command", "-a",
         # Arguments that start with "{" would be read as JSON; `sh -c` runs the group's command.
         "sh -c {{ check_cmd | quote }}"],
        env=env, capture_output=True, text=True, timeout=TIME_LIMIT,
    )
    wall = time.perf_counter() - started
    ok = done.stdout.count("| CHANGED") + done.stdout.count("| SUCCESS")
    if ok != len(fleet.hosts):
        print(f"  ansible forks={forks}: only {ok}/{len(fleet.hosts)} hosts answered\n{done.stderr[-500:]}")
        return None
    return wall


async def main() -> None:
    """Start the hosts, run every round, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=50, help="apt hosts")
    parser.add_argument("--dnf-hosts", type=int, default=10)
    parser.add_argument("--pacman-hosts", type=int, default=10)
    parser.add_argument("--ansible", default="/tmp/dm-ansible-venv/bin/ansible")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dm-bench-hosts-"))
    fleet = HostFleet(docker.from_env(timeout=300))
    try:
        started = time.perf_counter()
        counts = {"apt": args.hosts, "dnf": args.dnf_hosts, "pacman": args.pacman_hosts}
        for flavour, count in counts.items():
            if count:
                fleet.start(count, flavour=flavour)
        total = len(fleet.hosts)
        print(f"started {total} SSH hosts on 127.0.0.1 ({', '.join(f'{n} {f}' for f, n in counts.items())}) "
              f"in {time.perf_counter() - started:.1f}s")
        known = fleet.write_known_hosts(work / "known_hosts")
        # Warm-up: every host's package indexes are fetched once so each round does the same work.
        warm = await dockmaster_round(work / "warm", fleet, known, 20)
        if warm["failed"]:
            print(f"  warm-up: {len(warm['failed'])} host(s) failed: {', '.join(warm['failed'][:5])}")
        single_by_manager = await single_host_times(work / "single", fleet, known, sample=10)
        single = [t for times in single_by_manager.values() for t in times]
        slowest = max(single)
        for flavour, times in single_by_manager.items():
            print(f"single {flavour} host alone ({len(times)} hosts, one at a time): "
                  f"median {sorted(times)[len(times) // 2]:.2f}s, slowest {max(times):.2f}s")
        rows = []
        for fan_out in (20, 5):
            result = await dockmaster_round(work / f"fan{fan_out}", fleet, known, fan_out)
            rows.append((f"dockmaster fan-out {fan_out}", result["wall"]))
            print(f"dockmaster fan-out {fan_out:>2}: wall {result['wall']:.2f}s, slowest host run in it "
                  f"{result['slowest_in_run']:.2f}s, memory growth {result['growth_kb_per_host']:.0f} KiB/host, "
                  f"failed {len(result['failed'])}")
            if fan_out == 20:
                target = slowest + 2.0
                print(f"  target wall <= slowest single host + 2 s = {target:.2f}s: "
                      f"{'met' if result['wall'] <= target else 'NOT met'}; memory < 1 MiB/host: "
                      f"{'met' if result['growth_kb_per_host'] < 1024 else 'NOT met'}")
        if shutil.which(args.ansible) or Path(args.ansible).exists():
            for forks in (5, 20):
                answer = ansible_round(args.ansible, fleet, known, work, forks)
                if answer is not None:
                    rows.append((f"ansible-core forks {forks}", answer))
                    print(f"ansible-core forks {forks:>2}: wall {answer:.2f}s (the list commands only)")
        else:
            print(f"ansible not found at {args.ansible}: python3 -m venv /tmp/dm-ansible-venv && "
                  "/tmp/dm-ansible-venv/bin/pip install ansible-core")
        print("\nside by side (same hosts, same run):")
        for label, wall in rows:
            print(f"  {label:<24} {wall:7.2f}s  {total / wall:6.1f} hosts/s")
    finally:
        fleet.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), TIME_LIMIT))
