"""`GET /api/health` throughput of `dockmaster run` next to a bare aiohttp hello-world, same client, same run.

Both servers run as their own process on 127.0.0.1 without an access log; one aiohttp client with
N concurrent requests measures each in turn (twice, alternating, best of two).
Target: Dockmaster >= 0.6x the bare server.

    .venv/bin/python bench/core_http.py [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

DOCKMASTER = str(Path(sys.executable).parent / "dockmaster")
HELLO = """\
import sys
from aiohttp import web

async def hello(request):
    return web.json_response({"status": "ok", "version": "hello"})

app = web.Application()
app.router.add_get("/api/health", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
CONFIG = """\
dockmaster: {name: http-bench}
http: {host: 127.0.0.1}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


async def _measure(url: str, seconds: float, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(200):  # warm up connections
            async with session.get(url) as resp:
                await resp.read()
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with session.get(url) as resp:
                    assert resp.status == 200
                    await resp.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


async def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        (Path(tmp) / "hello.py").write_text(HELLO)
        dm_port, hello_port = _free_port(), _free_port()
        dm = subprocess.Popen([DOCKMASTER, "run", "-c", str(config), "--port", str(dm_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hello = subprocess.Popen([sys.executable, str(Path(tmp) / "hello.py"), str(hello_port)])
        try:
            _wait(dm_port, dm)
            _wait(hello_port, hello)
            results: dict[str, list[float]] = {"dockmaster": [], "aiohttp hello-world": []}
            for _ in range(2):
                results["aiohttp hello-world"].append(
                    await _measure(f"http://127.0.0.1:{hello_port}/api/health", args.seconds, args.concurrency))
                results["dockmaster"].append(
                    await _measure(f"http://127.0.0.1:{dm_port}/api/health", args.seconds, args.concurrency))
        finally:
            for proc in (dm, hello):
                proc.terminate()
                proc.wait(20)
    best = {name: max(values) for name, values in results.items()}
    ratio = best["dockmaster"] / best["aiohttp hello-world"]
    for name, value in best.items():
        print(f"{name:22} {value:8.0f} req/s  (runs: {', '.join(f'{v:.0f}' for v in results[name])})")
    print(f"ratio {ratio:.2f}x (target >= 0.6x) {'OK' if ratio >= 0.6 else 'MISSED'}; "
          f"{args.concurrency} concurrent, {args.seconds:g} s per run")
    return 0 if ratio >= 0.6 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    return asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
