"""100,000 run/event writes through the store, batched, while `GET /api/v1/runs` is timed concurrently.

The real app serves on 127.0.0.1 from this process (the writes share its event loop, as they do in
`dockmaster run`); a separate reader process calls `GET /api/v1/runs?limit=50` in a loop with an
API token and reports its latencies. Targets: >= 5,000 writes/s and a read p95 < 50 ms.

    .venv/bin/python bench/core_store.py [--writes 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from appliance.auth import hash_token
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY

TOKEN = "dm_bench_read_token"


def _reader(port: int, stop: Any, out: Any) -> None:
    """Call GET /api/v1/runs until told to stop; send back every latency in seconds."""

    async def loop() -> list[float]:
        latencies: list[float] = []
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while not stop.is_set():
                started = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}/api/v1/runs?limit=50") as resp:
                    assert resp.status == 200, resp.status
                    await resp.read()
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
        return latencies

    out.put(asyncio.run(loop()))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(writes: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "dockmaster: {name: store-bench}\nhttp: {host: 127.0.0.1}\n"
            f"auth:\n  tokens:\n    - {{name: bench, token_hash: '{hash_token(TOKEN)}', scopes: [read]}}\n"
        )
        webapp = await create_app(config)
        runner = web.AppRunner(webapp, access_log=None)
        await runner.setup()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        app = webapp[APPLIANCE_KEY]
        store = app.store
        for i in range(200):  # something to list from the start
            store.enqueue("INSERT INTO runs (kind, target, trigger, reason, status, created) "
                          "VALUES ('deploy', ?, 'poll', 'seed', 'succeeded', ?)", (f"seed{i}", time.time()))
        await store.flush()

        ctx = multiprocessing.get_context("spawn")
        stop, out = ctx.Event(), ctx.Queue()
        reader = ctx.Process(target=_reader, args=(port, stop, out))
        reader.start()
        await asyncio.sleep(1.5)  # the reader is up and has a baseline

        batches_before = store.stats.batches
        started = time.perf_counter()
        for i in range(writes):
            if i % 2:
                store.record_event("bench", {"i": i, "time": time.time()})
            else:
                store.enqueue(
                    "INSERT INTO runs (kind, target, trigger, reason, status, created, details) "
                    "VALUES ('deploy', ?, 'poll', 'bench write', 'succeeded', ?, ?)",
                    (f"stack{i % 50}", time.time(), json.dumps({"i": i})),
                )
            if i % 500 == 0:
                await asyncio.sleep(0)  # a producer that lets the loop breathe, like real addons
        await store.flush()
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.5)
        stop.set()
        # Wait off the loop: the reader's last request still needs this loop to answer it.
        latencies = await asyncio.get_running_loop().run_in_executor(None, out.get, True, 30)
        await asyncio.get_running_loop().run_in_executor(None, reader.join, 10)
        batches = store.stats.batches - batches_before
        await runner.cleanup()

    rate = writes / elapsed
    p50, p95, p99 = (_pct(latencies, q) * 1000 for q in (0.5, 0.95, 0.99))
    print(f"{writes:,} writes in {elapsed:.2f} s: {rate:,.0f} writes/s in {batches} batches "
          f"(target >= 5,000/s) {'OK' if rate >= 5000 else 'MISSED'}")
    print(f"GET /api/v1/runs during the writes: {len(latencies)} requests, p50 {p50:.1f} ms, "
          f"p95 {p95:.1f} ms, p99 {p99:.1f} ms (target p95 < 50 ms) {'OK' if p95 < 50 else 'MISSED'}")
    return 0 if rate >= 5000 and p95 < 50 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=100_000)
    return asyncio.run(_run(parser.parse_args().writes))


if __name__ == "__main__":
    sys.exit(main())
