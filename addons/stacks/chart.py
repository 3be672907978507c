"""The stack page's deploy chart: durations and outcomes of the last deploys and rollbacks, as inline SVG data.

The geometry is computed here and drawn by the `stacks_chart.html` partial; no script, no library.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.core import Appliance

CHART_RUNS = 30
WIDTH, HEIGHT = 300, 64
MIN_SLOTS = 12  # a stack with two deploys gets two slim bars, not two wide blocks
# The colour class of each run status (the stylesheet fills `.bar.<class>`).
OUTCOME_CLASS = {"succeeded": "ok", "failed": "bad", "interrupted": "bad", "running": "live", "queued": "live",
                 "cancelled": "muted", "skipped": "muted"}


def seconds_text(seconds: float) -> str:
    """A duration in words a chart label fits: 0.8s, 42s, 3.5m."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def deploy_chart(runs: list[dict[str, Any]], *, now: float | None = None) -> dict[str, Any] | None:
    """Bars (oldest first) for `runs`: height by duration, class by outcome, a title each; None without runs."""
    if not runs:
        return None
    now = time.time() if now is None else now
    durations = [max(0.0, (r.get("finished") or now) - r["started"]) if r.get("started") else 0.0 for r in runs]
    top = max(max(durations), 1.0)
    slot = WIDTH / max(len(runs), MIN_SLOTS)
    bars = []
    for index, (run, seconds) in enumerate(zip(runs, durations, strict=True)):
        height = max(2.0, round(seconds / top * (HEIGHT - 2), 1))
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.get("started") or run["created"]))
        bars.append({
            "id": run["id"], "status": run["status"], "kind": run["kind"],
            "class": OUTCOME_CLASS.get(run["status"], "muted"),
            "x": round(index * slot + 1, 1), "y": round(HEIGHT - height, 1), "width": round(max(slot - 2, 1), 1),
            "height": height,
            "title": f"#{run['id']} {run['kind']} {run['status']} in {seconds_text(seconds)}, {when}",
        })
    counts = Counter(run["status"] for run in runs)
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    kinds = Counter(run["kind"] for run in runs)
    what = " and ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(kinds.items()))
    return {
        "width": WIDTH, "height": HEIGHT, "bars": bars, "longest": seconds_text(max(durations)),
        "summary": f"The last {what}: {outcomes}; the longest took {seconds_text(max(durations))}.",
        "first": runs[0].get("started") or runs[0]["created"], "last": runs[-1].get("started") or runs[-1]["created"],
    }


async def async_deploy_runs(app: Appliance, name: str, limit: int = CHART_RUNS) -> list[dict[str, Any]]:
    """The stack's last `limit` deploy and rollback runs (dry-runs left out), oldest first."""
    deploys = await app.runs.list(kind="deploy", target=name, limit=limit * 2)
    rollbacks = await app.runs.list(kind="rollback", target=name, limit=limit)
    runs = [r for r in deploys if not r["details"].get("dry_run")] + rollbacks
    return sorted(runs, key=lambda r: r["id"])[-limit:]


async def async_stack_chart(app: Appliance, name: str) -> dict[str, Any] | None:
    """The chart of one stack for its page."""
    return deploy_chart(await async_deploy_runs(app, name))
