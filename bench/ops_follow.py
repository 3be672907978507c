"""Follow a container writing ~5,000 lines/s through the ops WebSocket viewer, next to `docker logs -f`.

Prints lines written, lines received by the viewer, drop markers and dropped lines, and the growth of the
Dockmaster process's resident memory (target: at most 20 MB), with `docker logs -f` on the same container
in the same run as the baseline, plus a second viewer that stops reading until the end (it must get a
drop marker, not an unbounded backlog). Loopback only; bounded in time (under two minutes).

    .venv/bin/python bench/ops_follow.py [--seconds 20] [--rate 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import docker
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.auth import hash_token  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402

TOKEN = "dm_bench_read_token"
PAD = "x" * 80


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _seconds(stamp: str) -> float:
    """Docker's nanosecond timestamp as epoch seconds."""
    from datetime import datetime

    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def writer_script(seconds: int, rate: int) -> str:
    """Busybox awk writing `rate` numbered lines per second in 10 bursts, for `seconds` seconds."""
    burst = rate // 10
    bursts = seconds * 10
    return (
        f"sleep 3; awk 'BEGIN {{ for (b = 0; b < {bursts}; b++) {{ for (i = 0; i < {burst}; i++) {{ n++; "
        f"printf \"line %d {PAD}\\n\", n }} fflush(); system(\"usleep 100000\") }} }}'"
    )


def small_buffer_socket(addr_info: Any) -> socket.socket:
    """A client socket with a fixed 64 KiB receive buffer, so a stalled reader backs up to the server quickly."""
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return sock


async def follow_ws(port: int, name: str, rss: list[int], pid: int, *, done: asyncio.Event,
                    stall: bool = False) -> dict[str, int]:
    """Count what the viewer delivers until the stream ends; `stall`: stop reading after 1,000 lines until `done`."""
    got = {"lines": 0, "markers": 0, "dropped": 0, "messages": 0, "last": 0}
    url = f"http://127.0.0.1:{port}/api/v1/ops/logs/{name}/follow?tail=0"
    connector = aiohttp.TCPConnector(socket_factory=small_buffer_socket) if stall else None
    async with aiohttp.ClientSession(connector=connector) as session, session.ws_connect(
        url, headers={"Authorization": f"Bearer {TOKEN}"}, max_msg_size=0
    ) as ws:
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"] == "end":
                if not stall:
                    done.set()
                break
            if data["type"] != "lines":
                continue
            got["messages"] += 1
            got["dropped"] += data.get("dropped", 0)
            for line in data["lines"]:
                if line.startswith("[... ") and line.endswith(" lines dropped ...]"):
                    got["markers"] += 1
                else:
                    got["lines"] += 1
                    got["last"] = int(line.split()[1])
            if got["messages"] % 20 == 0:
                rss.append(rss_kib(pid))
            if stall and got["lines"] >= 1000:
                await done.wait()  # a client that stops reading (a background tab, a slow link)
                stall = False
    return got


async def follow_cli(name: str) -> dict[str, int]:
    """The baseline: `docker logs -f` on the same container, counting lines and its own peak memory."""
    proc = await asyncio.create_subprocess_exec(
        "docker", "logs", "-f", "--since", "0s", name, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    count, peak = 0, 0
    async for _line in proc.stdout:
        count += 1
        if count % 5000 == 0:
            peak = max(peak, rss_kib(proc.pid))
    await proc.wait()
    return {"lines": count, "peak_rss_kib": peak}


async def main(seconds: int, rate: int) -> None:
    """Run the benchmark and print the figures."""
    client = docker.from_env()
    image = ensure_busybox_image(client)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dmops-bench-") as tmp:
        config = {
            "dockmaster": {"name": "bench", "data_dir": f"{tmp}/data", "log_level": "warning"},
            "http": {"host": "127.0.0.1", "port": port},
            "auth": {"users": [], "tokens": [{"name": "bench", "token_hash": hash_token(TOKEN), "scopes": ["read"]}]},
            "ops": {"image_check": None, "disk_check": "0 0 1 1 *"},
        }
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        server = subprocess.Popen([sys.executable, "-m", "appliance.cli", "run", "-c", str(path)], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        name = f"dmops-bench-{uuid.uuid4().hex[:8]}"
        container = None
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/api/health") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            container = client.containers.run(image, ["sh", "-c", writer_script(seconds, rate)], name=name,
                                               detach=True, labels={"io.dockmaster.managed": "true"})
            await asyncio.sleep(0.5)
            before = rss_kib(server.pid)
            samples: list[int] = [before]
            done = asyncio.Event()
            started = time.monotonic()
            ws_result, slow_result, cli_result = await asyncio.wait_for(
                asyncio.gather(follow_ws(port, name, samples, server.pid, done=done),
                               follow_ws(port, name, samples, server.pid, done=done, stall=True), follow_cli(name)),
                timeout=seconds + 90,
            )
            elapsed = time.monotonic() - started
            samples.append(rss_kib(server.pid))
            written = int(container.logs(tail=1).decode().split()[1])
            container.reload()
            state = container.attrs["State"]
            ran = _seconds(state["FinishedAt"]) - _seconds(state["StartedAt"]) - 3
        finally:
            if container is not None:
                container.remove(force=True)
            server.terminate()
            server.wait(timeout=20)
    growth = (max(samples) - before) / 1024
    ws_memory = f"RSS +{growth:.1f} MB (peak {max(samples) / 1024:.0f} MB)"
    print(f"ops follow benchmark: {written} lines written in {ran:.1f}s ({written / ran:.0f}/s), "
          f"{len(PAD) + 12} bytes each; wall {elapsed:.1f}s")
    print(f"{'':24}{'lines received':>16}{'of written':>12}{'drop markers':>14}{'dropped':>10}{'memory':>26}")
    print(f"{'dockmaster WebSocket':24}{ws_result['lines']:>16}{100 * ws_result['lines'] / written:>11.1f}%"
          f"{ws_result['markers']:>14}{ws_result['dropped']:>10}{ws_memory:>26}")
    print(f"{'  stalled to the end':24}{slow_result['lines']:>16}{100 * slow_result['lines'] / written:>11.1f}%"
          f"{slow_result['markers']:>14}{slow_result['dropped']:>10}{'(same process)':>26}")
    cli_memory = f"peak RSS {cli_result['peak_rss_kib'] / 1024:.0f} MB"
    print(f"{'docker logs -f (baseline)':24}{cli_result['lines']:>16}{100 * cli_result['lines'] / written:>11.1f}%"
          f"{'-':>14}{'-':>10}{cli_memory:>26}")
    accounted = ws_result["lines"] + ws_result["dropped"]
    slow = slow_result["lines"] + slow_result["dropped"]
    print(f"viewers accounted for {accounted}/{written} and {slow}/{written} lines (received + reported dropped); "
          f"RSS growth target <= 20 MB: {'met' if growth <= 20 else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rate))
