"""Benchmark: a no-change poll of 100 stacks spread over 3 engines, and the parallel engine-health check.

Run: .venv/bin/python bench/engines.py [--stacks 100] [--baseline 100] [--rounds 10]
Three engines on this machine: the local one, a second dockerd with TLS on 127.0.0.1 and a third
reached over SSH (an sshd test container holding its socket). Busybox stacks with no published
ports, no network and no healthcheck (see compose_text). The single-engine baseline (every stack
on the local engine) runs in the same process, and the health check is set beside the docker CLI
asking the same three engines one after another.
Everything it starts (engines, sshd container, projects, temporary folders) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import docker
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addons.engines.contract import ENGINES  # noqa: E402
from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE  # noqa: E402
from appliance.config import check_config  # noqa: E402
from appliance.http.app import async_build_appliance  # noqa: E402
from bench.stacks_deploy import git, idle, no_change_polls, remove_projects, stop  # noqa: E402
from tests.support.dockerd import ExtraEngine, extra_engine  # noqa: E402
from tests.support.engines import SshEngine, ssh_host_for  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402

TLS, SSH = "tls1", "ssh1"
POLL_TARGET, HEALTH_SLACK = 1.0, 0.2
T = TypeVar("T")


def compose_text(image: str, content: str) -> str:
    """A busybox httpd service with no healthcheck and no network of its own.

    The health gate then waits for a running container. 100-200 containers each probing every
    second would load this 2-core machine by themselves, and what is measured here is polls and
    engine checks, not the gate. No project network (`network_mode: none`): 100 of them would need
    100 address pools, and the engines of one machine share the ~30 that Docker's defaults give.
    """
    return f"""services:
  web:
    image: {image}
    network_mode: none
    command: ["sh", "-c", "mkdir -p /www && echo {content} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
"""


class Remote:
    """A bare repo with a work tree of stack folders, grouped by engine: stacks/<group>/<name>/compose.yaml."""

    def __init__(self, root: Path, groups: dict[str, list[str]], image: str) -> None:
        """Create the repo and commit every stack."""
        self.bare, self.work, self.image = root / "remote.git", root / "work", image
        root.mkdir(parents=True)
        git(root, "init", "-q", "--bare", "--initial-branch=main", str(self.bare))
        git(root, "init", "-q", "--initial-branch=main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.groups = groups
        for group, names in groups.items():
            for name in names:
                folder = self.work / "stacks" / group / name
                folder.mkdir(parents=True)
                (folder / "compose.yaml").write_text(compose_text(image, "v0"))
        (self.work / "README.md").write_text("bench\n")
        self.commit("All stacks")

    def commit(self, message: str) -> str:
        """Commit everything and push."""
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/main")
        return git(self.work, "rev-parse", "HEAD")


def spread(prefix: str, count: int, groups: list[str]) -> dict[str, list[str]]:
    """`count` stack names dealt over `groups` (34/33/33 for 100 over 3)."""
    names: dict[str, list[str]] = {group: [] for group in groups}
    for index in range(count):
        group = groups[index % len(groups)]
        names[group].append(f"{prefix}{group[0]}{index:03d}")
    return names


def engine_entries(tls: ExtraEngine, ssh: SshEngine) -> list[dict[str, Any]]:
    """The `engines:` list naming the TLS engine and the SSH one (checked only when asked, so no timer interferes)."""
    assert tls.tls is not None
    return [
        {"name": TLS, "url": tls.tcp_url, "check_interval": "1h",
         "tls": {"ca": str(tls.tls.ca), "cert": str(tls.tls.cert), "key": str(tls.tls.key)}},
        {"name": SSH, "url": f"ssh://{ssh.user}@127.0.0.1:{ssh.port}", "ssh_key": str(ssh.key),
         "known_hosts": str(ssh.known_hosts), "socket": ssh.socket, "stacks_dir": ssh.stacks_dir,
         "check_interval": "1h"},
    ]


async def start_app(root: Path, remote: Remote, placement: dict[str, str], engines: list[dict[str, Any]]) -> Any:
    """The real appliance (repos + stacks with one `discover` entry per engine folder, + engines), without HTTP."""
    stacks: list[dict[str, Any]] = [
        {"discover": {"repo": "infra", "path": f"stacks/{group}/*", "engine": engine, "health_timeout": "120s"}}
        for group, engine in placement.items()]
    stacks.append({"settings": {"max_parallel": 4, "drift_check": "0 0 1 1 *"}})
    config: dict[str, Any] = {
        "dockmaster": {"name": "bench", "data_dir": str(root / "data"), "log_level": "warning"},
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": stacks,
    }
    if engines:
        config["engines"] = engines
    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    checked = check_config(path)
    assert checked.ok, checked.issues
    app = await async_build_appliance(checked)
    assert "stacks" in app.loaded_addons, app.addon_errors
    try:
        assert not engines or "engines" in app.loaded_addons, app.addon_errors
        await app.async_start()
    except BaseException:  # interrupted while starting: its store's writer thread would keep the process alive
        await stop(app)
        raise
    return app


async def deploy_all(app: Any, remote: Remote, placement: dict[str, str]) -> dict[str, int]:
    """Wait for the initial deploy; every stack must be healthy on its folder's engine. Returns stacks per engine."""
    await idle(app)
    states = app.data[STACKS_SERVICE].engine.states
    per_engine: dict[str, int] = {}
    for group, names in remote.groups.items():
        for name in names:
            state = states.get(name)
            if (state.engine, state.health) != (placement[group], "healthy"):
                run = await app.runs.get(state.last_run_id) if state.last_run_id else None
                log = "\n".join((run or {}).get("log", "").splitlines()[-15:])
                raise RuntimeError(f"{name} is {state.health} on {state.engine} after the first deploy:\n{log}")
            per_engine[state.engine] = per_engine.get(state.engine, 0) + 1
    return per_engine


async def health_rounds(app: Any, rounds: int) -> dict[str, Any]:
    """`EngineMonitor.async_check_all(force=True)` `rounds` times: total, slowest engine and each engine's took."""
    monitor = app.data[ENGINES].monitor
    await monitor.async_check_all(force=True)  # warm: links up, clients made, the 10-minute disk figure taken
    totals, slowest, took = [], [], {}
    for _ in range(rounds):
        start = time.perf_counter()
        statuses = await monitor.async_check_all(force=True)
        totals.append(time.perf_counter() - start)
        assert all(s.reachable for s in statuses), [(s.name, s.error) for s in statuses]
        slowest.append(max(s.took for s in statuses))
        for status in statuses:
            took.setdefault(status.name, []).append(status.took)
    return {"total": statistics.median(totals), "slowest": statistics.median(slowest),
            "engines": {name: statistics.median(values) for name, values in took.items()},
            "names": [s.name for s in monitor.statuses()]}


async def bench_spread(root: Path, image: str, args: argparse.Namespace, prefix: str,
                       engines: list[dict[str, Any]]) -> dict[str, Any]:
    """Part 1 and 2 on one appliance: 100 stacks over local/TLS/SSH, polls, then health rounds."""
    placement = {"local": "local", "tls": TLS, "ssh": SSH}
    remote = Remote(root / "git-spread", spread(prefix, args.stacks, list(placement)), image)
    started = time.perf_counter()
    app = await start_app(root / "app-spread", remote, placement, engines)
    try:
        per_engine = await deploy_all(app, remote, placement)
        initial = time.perf_counter() - started
        polls = await no_change_polls(app, remote)
        health = await health_rounds(app, args.rounds)
        return {"initial": initial, "per_engine": per_engine, "polls": polls, "health": health}
    finally:
        await stop(app)


async def bench_local(root: Path, image: str, count: int, prefix: str) -> dict[str, Any]:
    """The single-engine baseline: `count` stacks all on the local engine, the same polls."""
    remote = Remote(root / "git-local", {"all": [f"{prefix}{i:03d}" for i in range(count)]}, image)
    started = time.perf_counter()
    app = await start_app(root / "app-local", remote, {"all": "local"}, [])
    try:
        await deploy_all(app, remote, {"all": "local"})
        initial = time.perf_counter() - started
        return {"initial": initial, "polls": await no_change_polls(app, remote)}
    finally:
        await stop(app)


class CliProbe:
    """The docker CLI asking each engine for `info`, one engine after another (a fresh process and login each)."""

    def __init__(self, root: Path, tls: ExtraEngine, ssh: SshEngine) -> None:
        """Build the three command lines; ssh:// gets its key and known_hosts from an `ssh` wrapper on PATH."""
        assert tls.tls is not None
        folder = root / "cli"
        (folder / "bin").mkdir(parents=True)
        config = folder / "ssh_config"
        config.write_text(f"Host 127.0.0.1\n  IdentityFile {ssh.key}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
                          f"  UserKnownHostsFile {ssh.known_hosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n")
        real_ssh = shutil.which("ssh")
        assert real_ssh, "no ssh client"
        wrapper = folder / "bin" / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {real_ssh} -F {config} "$@"\n')
        wrapper.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{folder / 'bin'}:{os.environ['PATH']}", "HOME": str(folder)}
        self.env.pop("DOCKER_HOST", None)
        fmt = ["info", "--format", "{{.ServerVersion}} {{.ContainersRunning}}"]
        self.argv = {
            "local": ["docker", *fmt],
            TLS: ["docker", "-H", tls.tcp_url, "--tlsverify", "--tlscacert", str(tls.tls.ca),
                  "--tlscert", str(tls.tls.cert), "--tlskey", str(tls.tls.key), *fmt],
            SSH: ["docker", "-H", f"ssh://{ssh.user}@127.0.0.1:{ssh.port}", *fmt],
        }

    def once(self, name: str) -> float:
        """Time one `docker info` against one engine (blocks)."""
        start = time.perf_counter()
        result = subprocess.run(self.argv[name], env=self.env, capture_output=True, text=True, timeout=60,
                                check=False)
        took = time.perf_counter() - start
        if result.returncode != 0 or not result.stdout.strip():
            raise RuntimeError(f"docker info on {name} failed: {result.stderr.strip()}")
        return took

    def rounds(self, rounds: int) -> dict[str, Any]:
        """Median of `rounds` sequential passes over the three engines (after one unmeasured pass)."""
        for name in self.argv:
            self.once(name)
        totals, took = [], {}
        for _ in range(rounds):
            times = {name: self.once(name) for name in self.argv}
            totals.append(sum(times.values()))
            for name, value in times.items():
                took.setdefault(name, []).append(value)
        return {"total": statistics.median(totals),
                "engines": {name: statistics.median(values) for name, values in took.items()}}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


async def interruptible(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; Ctrl-C or SIGTERM cancels only it, so its `finally` stops the appliance with its tasks intact.

    (A KeyboardInterrupt raised inside the loop makes asyncio.run cancel every task at once, and
    the appliance cannot stop cleanly from there.)
    """
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def cancel() -> None:
        if not task.cancelling():  # a second signal must not cut the cleanup short
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cancel)
    try:
        return await work
    except asyncio.CancelledError:
        raise KeyboardInterrupt("interrupted") from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        signal.signal(signal.SIGTERM, _interrupt)


def main() -> int:
    """Start the engines, run both measurements, remove everything, print figures beside their targets."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stacks", type=int, default=100, help="stacks spread over the 3 engines")
    parser.add_argument("--baseline", type=int, default=100, help="stacks all on the local engine (0: skip)")
    parser.add_argument("--rounds", type=int, default=10, help="health-check rounds")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # a killed run still removes what it started
    client = docker.from_env()
    image = ensure_busybox_image(client)
    tag = secrets.token_hex(3)
    prefix_s, prefix_l = f"bes{tag}", f"bel{tag}"
    root = Path(tempfile.mkdtemp(prefix="dm-bench-engines-"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        began = time.perf_counter()
        tls = cleanup.enter_context(extra_engine(tls=True))
        far = cleanup.enter_context(extra_engine())
        ssh = cleanup.enter_context(ssh_host_for(far, client))
        # Runs before the engines close (LIFO): our projects on each engine, then the engines themselves.
        clients = [client, tls.client(), far.client()]
        for engine_client in clients:
            cleanup.callback(remove_projects, engine_client, f"dm-{prefix_l}")
            cleanup.callback(remove_projects, engine_client, f"dm-{prefix_s}")
        setup = time.perf_counter() - began
        a = asyncio.run(interruptible(bench_spread(root, image, args, prefix_s, engine_entries(tls, ssh))))
        cli = CliProbe(root, tls, ssh).rounds(args.rounds)
        for engine_client in clients:  # the baseline runs alone
            remove_projects(engine_client, f"dm-{prefix_s}")
        b = asyncio.run(interruptible(bench_local(root, image, args.baseline, prefix_l))) if args.baseline else None
    return report(args, setup, a, b, cli)


def report(args: argparse.Namespace, setup: float, a: dict[str, Any], b: dict[str, Any] | None,
           cli: dict[str, Any]) -> int:
    """Print the figures beside their targets; 1 when one is missed."""
    missed = False
    spread_text = ", ".join(f"{n} on {e}" for e, n in sorted(a["per_engine"].items()))
    print(f"\n(setup: TLS engine, SSH engine and its sshd container up in {setup:.1f} s)")
    print(f"\n(1) no-change poll of {args.stacks} stacks over 3 engines ({spread_text})")
    print(f"    initial deploy (start -> all running)   {a['initial']:7.1f} s")
    for label, (wall, calls, runs) in a["polls"].items():
        ok = wall <= POLL_TARGET and calls == 0 and runs == 0
        missed |= not ok
        line = f"    {label:<18} {wall:6.3f} s wall, {calls} compose calls, {runs} deploy runs"
        if b is not None:
            base = b["polls"][label]
            line += f"   | local only: {base[0]:6.3f} s, {base[1]} calls, {base[2]} runs"
        print(f"{line}   (target <= {POLL_TARGET:g} s, 0 calls: {'ok' if ok else 'MISSED'})")
    if b is not None:
        print(f"    baseline: {args.baseline} stacks all on the local engine, same run "
              f"(initial deploy {b['initial']:.1f} s)")
    h = a["health"]
    ok = h["total"] <= h["slowest"] + HEALTH_SLACK
    missed |= not ok
    print(f"\n(2) engine-health check of {len(h['names'])} engines, median of {args.rounds} rounds")
    print("    engine      Dockmaster (took, in parallel)   docker CLI info (one after another)")
    for name in h["names"]:
        print(f"    {name:<10}  {h['engines'][name]:8.3f} s                       {cli['engines'][name]:8.3f} s")
    print(f"    total       {h['total']:8.3f} s (slowest engine {h['slowest']:.3f} s)   {cli['total']:8.3f} s (sum)")
    print(f"    (Dockmaster's per-engine times add up to {sum(h['engines'].values()):.3f} s: one after another)")
    print(f"    target: total <= slowest + {HEALTH_SLACK:g} s = {h['slowest'] + HEALTH_SLACK:.3f} s: "
          f"{'ok' if ok else 'MISSED'}")
    print("    (the SSH engine: Dockmaster keeps one SSH connection; the CLI's ssh:// logs in at every call)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
