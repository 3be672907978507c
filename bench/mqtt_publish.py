"""Full Home Assistant discovery publish of 100 stacks and 50 hosts, next to a bare aiomqtt client.

Run: `.venv/bin/python bench/mqtt_publish.py [--stacks 100] [--hosts 50] [--rounds 3] [--idle 10]`.
Starts Debian's mosquitto on 127.0.0.1 (no persistence, anonymous). Each round runs each side in a
fresh process, on a freshly started broker:

- `addon`: the real mqtt addon's bridge (its entity tables, state payloads and publisher) over
  synthetic stack and host catalogues; time from `async_start` until it has connected, subscribed,
  announced itself and published every discovery config and state (QoS 1, retained: every PUBACK);
- `bare aiomqtt`: one aiomqtt client that connects and publishes the same messages the same way.

RSS growth is measured in each process from the point where aiomqtt and the contracts the addon
reads are imported (the addon's own modules count as its growth) until after the publish and
`--idle` seconds connected and idle. After each run a subscriber counts the retained messages on
the broker, so a side that dropped messages cannot win. Targets: full publish <= 1 s, idle RSS
growth from the addon <= 5 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addons.backup.contract import BACKUPS, LastBackup  # noqa: E402
from addons.hosts.contract import HOSTS  # noqa: E402
from addons.stacks.contract import STACKS, StackOverview  # noqa: E402
from appliance.datakeys import AddonData  # noqa: E402

TARGET_SECONDS = 1.0
TARGET_MB = 5.0


def _rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- synthetic catalogues (the read models the addon gets from the stacks, hosts and backup addons) ---------


class Stacks:
    """`StackCatalog` over `count` stacks, each three commits behind."""

    def __init__(self, count: int) -> None:
        """Name the stacks."""
        self._names = [f"stack-{i:03d}" for i in range(count)]

    def names(self) -> list[str]:
        """Every stack."""
        return self._names

    async def async_overview(self, name: str) -> StackOverview:
        """A stack deployed at one commit with three newer ones."""
        return StackOverview(name=name, health="healthy", auto_deploy=True, deployed_revision="a" * 40,
                             latest_revision="b" * 40, latest_subject=f"Bump {name} image",
                             last_run_kind="deploy", last_run_status="succeeded", last_run_time=1.7e9,
                             last_run_error=None, pending_subjects=(f"Bump {name} image", "Tune healthcheck",
                                                                    "Add a volume"), pending_total=3)


class Hosts:
    """`HostFleet` over `count` hosts, each with two pending packages."""

    def __init__(self, count: int) -> None:
        """Name the hosts."""
        self.conf = {f"host-{i:02d}": {} for i in range(count)}

    def status(self, name: str) -> Any:
        """A host with pending updates."""
        return SimpleNamespace(state="pending_updates", reason="checked", error=None, reboot_required=False,
                               pending=[{"name": "openssl", "current": "3.0.15-1", "new": "3.0.16-1"},
                                        {"name": "curl", "current": "7.88.1-10", "new": "7.88.1-11"}])


class Backups:
    """`BackupCatalog` with one archive."""

    async def async_last(self) -> LastBackup:
        """The newest archive."""
        return LastBackup(name="dockmaster-bench-20300101T000000Z.tar.gz", time=1.7e9, size=123456, ok=True,
                          error=None)


def _app(stacks: int, hosts: int) -> Any:
    """The parts of the appliance the bridge reads, with synthetic catalogues."""
    data = AddonData()
    data[STACKS] = Stacks(stacks)
    data[HOSTS] = Hosts(hosts)
    data[BACKUPS] = Backups()

    async def run_blocking(func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)

    return SimpleNamespace(name="bench", version="bench", link=lambda path: f"http://127.0.0.1:8123{path}",
                           data=data, runs=SimpleNamespace(active={}), addon_errors={}, oneshot=False,
                           async_run_blocking=run_blocking)


def _conf(port: int) -> dict[str, Any]:
    from addons.mqtt.schema import CONFIG_SCHEMA

    return dict(CONFIG_SCHEMA({"broker": f"mqtt://127.0.0.1:{port}", "client_id": "bench"}))


async def _messages(stacks: int, hosts: int) -> list[tuple[str, str]]:
    """Every message a full publish sends: the availability, each discovery config, each state."""
    from addons.mqtt.bridge import MqttBridge
    from addons.mqtt.states import dumps

    bridge = MqttBridge(_app(stacks, hosts), _conf(1883))
    messages = [(bridge.topics.availability, "online")]
    messages += [(bridge.topics.config(e.platform, e.object_id), dumps(e.config)) for e in bridge.entities()]
    for kind, name in bridge.devices():
        messages += list((await bridge.async_states(kind, name)).items())
    return messages


# --- the two sides, each in its own process ------------------------------------------------------------------


async def _child_addon(port: int, stacks: int, hosts: int, idle: float) -> dict[str, Any]:
    before = _rss_mb()
    from addons.mqtt.bridge import MqttBridge

    bridge = MqttBridge(_app(stacks, hosts), _conf(port))
    started = time.perf_counter()
    await bridge.async_start()
    await asyncio.wait_for(bridge.connected.wait(), 60)
    seconds = time.perf_counter() - started
    await asyncio.sleep(idle)
    after = _rss_mb()
    await bridge.async_stop()
    return {"seconds": seconds, "rss_before": before, "rss_after": after}


async def _child_bare(port: int, stacks: int, hosts: int, idle: float) -> dict[str, Any]:
    messages = json.loads(Path(os.environ["BENCH_MESSAGES"]).read_text())
    before = _rss_mb()
    started = time.perf_counter()
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-bare") as client:
        await asyncio.gather(*(client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages))
        seconds = time.perf_counter() - started
        await asyncio.sleep(idle)
        after = _rss_mb()
    return {"seconds": seconds, "rss_before": before, "rss_after": after}


# --- the parent: broker, rounds, the table --------------------------------------------------------------------


class Mosquitto:
    """Debian's mosquitto on 127.0.0.1, restartable (retained messages go with it)."""

    def __init__(self, folder: Path) -> None:
        """Write its config."""
        self.port = _free_port()
        self.config = folder / "mosquitto.conf"
        user = ["user root"] if os.getuid() == 0 else []
        self.config.write_text("\n".join([*user, "persistence false", "log_dest stderr", "log_type error",
                                          "allow_anonymous true", f"listener {self.port} 127.0.0.1", ""]))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen([binary, "-c", str(self.config)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


async def _retained(port: int) -> int:
    """How many retained messages the broker holds (read until it has been quiet for 0.5 s)."""
    seen: set[str] = set()
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-count") as client:
        await client.subscribe("#")
        with contextlib.suppress(TimeoutError):
            while True:
                message = await asyncio.wait_for(anext(aiter(client.messages)), 0.5)
                if message.retain and message.payload:
                    seen.add(message.topic.value)
    return len(seen)


def _run_child(side: str, port: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", side, "--port", str(port), "--stacks",
                          str(args.stacks), "--hosts", str(args.hosts), "--idle", str(args.idle)],
                         capture_output=True, text=True, env=env, check=False, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--child", choices=("addon", "bare"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.child:
        child = _child_addon if args.child == "addon" else _child_bare
        print(json.dumps(asyncio.run(child(args.port, args.stacks, args.hosts, args.idle))))
        return 0

    messages = asyncio.run(_messages(args.stacks, args.hosts))
    results: dict[str, list[dict[str, Any]]] = {"addon": [], "bare aiomqtt": []}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "messages.json").write_text(json.dumps(messages))
        env = {**os.environ, "BENCH_MESSAGES": str(Path(tmp) / "messages.json")}
        broker = Mosquitto(Path(tmp))
        try:
            for _ in range(args.rounds):
                for side, key in (("addon", "addon"), ("bare", "bare aiomqtt")):
                    broker.start()
                    try:
                        result = _run_child(side, broker.port, args, env)
                        result["retained"] = asyncio.run(_retained(broker.port))
                    finally:
                        broker.stop()
                    results[key].append(result)
        finally:
            broker.stop()

    # The addon also retains its availability ("online"), like the bare client's copy of it.
    expected = len({topic for topic, _ in messages})
    print(f"\nfull discovery publish: {args.stacks} stacks + {args.hosts} hosts = {len(messages)} messages "
          f"(QoS 1, retained), {args.rounds} rounds, fresh broker and process each; idle {args.idle:g} s")
    print(f"  {'client':<14} {'publish s (median)':>19} {'max s':>7} {'RSS growth MB (median)':>23} "
          f"{'max MB':>7} {'retained':>9}")
    for key, rows in results.items():
        times = [r["seconds"] for r in rows]
        growth = [r["rss_after"] - r["rss_before"] for r in rows]
        kept = min(r["retained"] for r in rows)
        print(f"  {key:<14} {statistics.median(times):>19.3f} {max(times):>7.3f} {statistics.median(growth):>23.2f} "
              f"{max(growth):>7.2f} {kept:>5}/{expected}")
    addon = results["addon"]
    seconds = statistics.median(r["seconds"] for r in addon)
    growth = statistics.median(r["rss_after"] - r["rss_before"] for r in addon)
    complete = all(r["retained"] == expected for rows in results.values() for r in rows)
    ok = seconds <= TARGET_SECONDS and growth <= TARGET_MB and complete
    print(f"  target: publish <= {TARGET_SECONDS:g} s ({seconds:.3f} s), addon RSS growth <= {TARGET_MB:g} MB "
          f"({growth:.2f} MB), every message retained ({'yes' if complete else 'NO'}): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
