"""Benchmark: 1,000 successive syncs of one repo stay flat in time with a bounded pack count.

A local bare remote gets a new commit every 10 fetches. Each iteration times one Dockmaster sync
(the whole run: queue, fetch, checkout, gc --auto, store, event) and, as the baseline in the same
run, one plain `git fetch` of another clone with all maintenance switched off. Both clones keep
every fetched pack (`fetch.unpackLimit=1`, what large fetches do anyway), the worst case for pack
count. Loopback only; bounded to a few minutes.

Run: .venv/bin/python bench/repos_fetch.py [--fetches 1000] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER  # noqa: E402
from appliance.config import check_config  # noqa: E402
from appliance.http.app import async_build_appliance  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
TIME_LIMIT = 280.0


def git(cwd: Path, *args: str) -> str:
    """Run git and return stdout."""
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def packs(repo: Path) -> int:
    """Pack files in a clone."""
    return len(list((repo / ".git" / "objects" / "pack").glob("*.pack")))


def loose(repo: Path) -> int:
    """Loose objects in a clone."""
    out = git(repo, "count-objects", "-v")
    return int(next(line.split(": ")[1] for line in out.splitlines() if line.startswith("count:")))


async def main(fetches: int, every: int) -> int:
    """Run the benchmark and print a block table; exit status 1 when the targets are missed."""
    tmp = Path(tempfile.mkdtemp(prefix="dm-bench-repos-"))
    bare, work, baseline = tmp / "remote.git", tmp / "author", tmp / "baseline"
    git(tmp, "init", "-q", "--bare", "--initial-branch=main", str(bare))
    git(tmp, "init", "-q", "--initial-branch=main", str(work))
    git(work, "remote", "add", "origin", str(bare))
    for i in range(20):  # some history to start from
        (work / f"stack{i}").mkdir()
        (work / f"stack{i}" / "compose.yaml").write_text(f"services: {{s{i}: {{image: busybox}}}}\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "Initial stacks")
    git(work, "push", "-q", "origin", "main")
    git(tmp, "clone", "-q", str(bare), str(baseline))
    git(baseline, "config", "fetch.unpackLimit", "1")

    config = tmp / "config.yaml"
    config.write_text(
        f"dockmaster:\n  name: bench\n  data_dir: {tmp / 'data'}\n"
        f"repos:\n  - name: infra\n    url: {bare}\n"
    )
    checked = check_config(config)
    assert checked.ok, [str(i) for i in checked.issues]
    app = await async_build_appliance(checked, oneshot=True)
    manager = app.data[REPOS_MANAGER]
    first = await manager.async_sync("infra", trigger="manual", reason="bench")
    assert first.error is None, first.error
    clone = manager.get("infra").path
    git(clone, "config", "fetch.unpackLimit", "1")

    block = 100 if fetches >= 300 else max(10, fetches // 5)
    dm_times: list[float] = []
    dm_git: list[float] = []
    base_times: list[float] = []
    rows = []
    started = time.monotonic()
    print(f"{fetches} fetches, a new commit every {every}; times are mean ms per fetch in each block")
    print(f"{'fetches':>9} | {'dockmaster sync':>15} {'(git part)':>10} {'packs':>5} {'loose':>5} | "
          f"{'plain git fetch':>15} {'packs':>5} {'loose':>5}")
    for i in range(fetches):
        if i % every == 0:
            (work / f"stack{i % 20}" / "compose.yaml").write_text(f"# change {i}\nservices: {{}}\n")
            git(work, "commit", "-q", "-am", f"Change {i}")
            git(work, "push", "-q", "origin", "main")
        t0 = time.perf_counter()
        result = await manager.async_sync("infra", trigger="poll", reason="poll")
        dm_times.append(time.perf_counter() - t0)
        if result.error:
            print("sync failed:", result.error)
            return 1
        run = await app.runs.get(result.run_id)
        dm_git.append(float((run or {}).get("details", {}).get("fetch_seconds", 0.0)))
        t0 = time.perf_counter()
        subprocess.run(["git", "-c", "maintenance.auto=false", "-c", "gc.auto=0", "fetch", "-q", "origin"],
                       cwd=baseline, env=ENV, check=True)
        base_times.append(time.perf_counter() - t0)
        if (i + 1) % block == 0:
            sl = slice(i + 1 - block, i + 1)
            row = (i + 1, statistics.mean(dm_times[sl]) * 1000, statistics.mean(dm_git[sl]) * 1000,
                   packs(clone), loose(clone), statistics.mean(base_times[sl]) * 1000, packs(baseline),
                   loose(baseline))
            rows.append(row)
            print(f"{row[0]:>9} | {row[1]:>13.1f}ms {row[2]:>8.1f}ms {row[3]:>5} {row[4]:>5} | "
                  f"{row[5]:>13.1f}ms {row[6]:>5} {row[7]:>5}", flush=True)
        if time.monotonic() - started > TIME_LIMIT:
            print(f"stopped after {i + 1} fetches: time limit {TIME_LIMIT:.0f}s reached")
            break
    await app.async_stop()
    await app.store.async_close()

    if not rows:
        return 1
    dm_means = [r[1] for r in rows]
    base_means = [r[5] for r in rows]
    dm_spread = _spread(dm_means)
    base_spread = _spread(base_means)
    dm_packs = max(r[3] for r in rows)
    print()
    print(f"dockmaster: block means {min(dm_means):.1f}-{max(dm_means):.1f} ms, spread ±{dm_spread:.0f}% "
          f"of the median; packs at most {dm_packs} (final {rows[-1][3]})")
    print(f"baseline  : block means {min(base_means):.1f}-{max(base_means):.1f} ms, spread ±{base_spread:.0f}% "
          f"of the median; packs grew to {rows[-1][6]}")
    flat = dm_spread <= 20
    bounded = dm_packs <= 9
    print(f"target: flat within ±20% -> {'met' if flat else 'missed'}; pack count bounded -> "
          f"{'met' if bounded else 'missed'}")
    print(f"total {time.monotonic() - started:.0f}s")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if flat and bounded else 1


def _spread(values: list[float]) -> float:
    """Largest distance of a block mean from the median block mean, in percent."""
    median = statistics.median(values)
    return max(abs(v - median) for v in values) / median * 100


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="push a new commit every N fetches")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.fetches, args.every)))
