"""How long a failing deploy waits for its notification: Dockmaster's notifier vs an inline Apprise call.

The baseline is what a notifier without a queue does (doco-cd calls Apprise from the deploy path, with
no timeout of its own): the deploy waits for the send. Two targets, both on 127.0.0.1: one answers
after 200 ms (a slow service), one accepts the connection and never answers (a dead one).

    .venv/bin/python bench/notify_latency.py [--runs 20] [--baseline-runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import apprise
import yaml
from aiohttp import web

from addons.stacks.events import DeployFailed
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY

SLOW_ANSWER = 0.2


async def _start_receivers() -> tuple[web.AppRunner, asyncio.Server, int, int, list[float]]:
    arrivals: list[float] = []

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(SLOW_ANSWER)
        arrivals.append(time.monotonic())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    slow_port = runner.addresses[0][1]

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # returns when the client gives up
        finally:
            writer.close()

    stall_server = await asyncio.start_server(stall, "127.0.0.1", 0)
    return runner, stall_server, slow_port, stall_server.sockets[0].getsockname()[1], arrivals


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _dockmaster(slow_url: str, dead_url: str, runs: int, arrivals: list[float]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "secrets.yaml").write_text(yaml.safe_dump({"slow": slow_url, "dead": dead_url}))
        (base / "config.yaml").write_text(
            f"dockmaster: {{name: bench, data_dir: {base / 'data'}}}\nhttp: {{host: 127.0.0.1, port: 8099}}\n"
            "notify:\n"
            "  - {name: slow, url: !secret slow, events: [deploy_failed], fold: 0s}\n"
            "  - {name: dead, url: !secret dead, events: [deploy_failed], fold: 0s, timeout: 2s, retries: 0}\n"
        )
        webapp = await create_app(base / "config.yaml")
        runner = web.AppRunner(webapp)
        await runner.setup()
        app = webapp[APPLIANCE_KEY]
        waits: list[float] = []
        floor: list[float] = []
        fire: list[float] = []
        arrivals.clear()
        first_fired = time.monotonic()
        try:
            for number in range(runs):
                # The floor: the same run without an event, so the run's own store writes are not counted.
                started = time.monotonic()
                async with app.runs.track("deploy", "bench", trigger="manual", reason="bench"):
                    pass
                floor.append(time.monotonic() - started)
                started = time.monotonic()
                async with app.runs.track("deploy", "bench", trigger="manual", reason="bench") as run:
                    fired = time.perf_counter()
                    app.bus.async_fire(DeployFailed(stack=f"s{number}", revision="abc", error="boom", run_id=run.id))
                    fire.append(time.perf_counter() - fired)
                waits.append(time.monotonic() - started)
            deadline = time.monotonic() + 30
            while len(arrivals) < runs and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            delivered = time.monotonic() - first_fired
        finally:
            await runner.cleanup()
    return {"p50": statistics.median(waits), "p95": _pct(waits, 0.95), "max": max(waits),
            "floor_p50": statistics.median(floor), "floor_p95": _pct(floor, 0.95), "floor_max": max(floor),
            "fire_us": statistics.median(fire) * 1e6, "all_delivered_s": delivered, "delivered": len(arrivals)}


async def _inline(slow_url: str, dead_url: str, runs: int) -> dict[str, float]:
    """The baseline: the deploy path itself awaits Apprise (default socket timeouts, no limit of its own)."""
    notifier = apprise.Apprise()
    notifier.add(slow_url)
    notifier.add(dead_url)
    waits = []
    for number in range(runs):
        started = time.monotonic()
        await notifier.async_notify(body=f"deploy of s{number} failed", title="Deploy failed")
        waits.append(time.monotonic() - started)
    return {"p50": statistics.median(waits), "p95": _pct(waits, 0.95), "max": max(waits)}


async def main() -> None:
    """Run both measurements in one process and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline-runs", type=int, default=3)
    args = parser.parse_args()
    runner, stall_server, slow_port, stall_port, arrivals = await _start_receivers()
    slow_url = f"json://127.0.0.1:{slow_port}/hook"
    dead_url = f"json://127.0.0.1:{stall_port}/hook"
    try:
        ours = await _dockmaster(slow_url, dead_url, args.runs, arrivals)
        base = await _inline(slow_url, dead_url, args.baseline_runs)
    finally:
        stall_server.close()
        await runner.cleanup()
    print(f"targets: one answers after {SLOW_ANSWER * 1000:.0f} ms, one never answers (both 127.0.0.1)")
    print(f"{'how the deploy notifies':<42}{'runs':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    print(f"{'Dockmaster (bus -> per-target queue)':<42}{args.runs:>6}{ours['p50'] * 1000:>10.2f}"
          f"{ours['p95'] * 1000:>10.2f}{ours['max'] * 1000:>10.2f}")
    print(f"{'no notification (floor: the run alone)':<42}{args.runs:>6}{ours['floor_p50'] * 1000:>10.2f}"
          f"{ours['floor_p95'] * 1000:>10.2f}{ours['floor_max'] * 1000:>10.2f}")
    print(f"{'inline Apprise call (baseline)':<42}{args.baseline_runs:>6}{base['p50'] * 1000:>10.0f}"
          f"{base['p95'] * 1000:>10.0f}{base['max'] * 1000:>10.0f}")
    print(f"bus.async_fire(DeployFailed) with the notifier listening: {ours['fire_us']:.0f} us (median)")
    print(f"Dockmaster delivered {ours['delivered']:.0f}/{args.runs} messages to the slow target "
          f"{ours['all_delivered_s']:.2f} s after the first deploy finished")


if __name__ == "__main__":
    asyncio.run(main())
