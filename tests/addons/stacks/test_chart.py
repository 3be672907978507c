"""The deploy chart's geometry: one bar per run, height by duration, class by outcome, words for screen readers."""

from __future__ import annotations

from typing import Any

from addons.stacks.chart import HEIGHT, WIDTH, deploy_chart


def _run(run_id: int, kind: str, status: str, started: float, seconds: float | None) -> dict[str, Any]:
    return {"id": run_id, "kind": kind, "status": status, "created": started, "started": started,
            "finished": None if seconds is None else started + seconds}


def test_no_runs_no_chart() -> None:
    assert deploy_chart([]) is None


def test_bars_follow_duration_and_outcome() -> None:
    runs = [_run(1, "deploy", "succeeded", 1000.0, 4.0), _run(2, "deploy", "failed", 2000.0, 8.0),
            _run(3, "rollback", "succeeded", 2010.0, 2.0), _run(4, "deploy", "running", 3000.0, None)]
    chart = deploy_chart(runs, now=3001.0)
    assert chart is not None
    bars = chart["bars"]
    assert [b["id"] for b in bars] == [1, 2, 3, 4]
    assert [b["class"] for b in bars] == ["ok", "bad", "ok", "live"]
    # The longest run fills the height; the others scale with their duration; all stand on the baseline.
    assert bars[1]["height"] == HEIGHT - 2
    assert bars[0]["height"] == round(4 / 8 * (HEIGHT - 2), 1)
    assert bars[3]["height"] == round(1 / 8 * (HEIGHT - 2), 1)  # running: measured up to now
    assert all(b["y"] + b["height"] == HEIGHT for b in bars)
    # Oldest left, each in its own slot inside the drawing.
    assert [b["x"] for b in bars] == sorted(b["x"] for b in bars)
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= WIDTH for b in bars)
    assert bars[1]["title"].startswith("#2 deploy failed in 8.0s, ")
    assert chart["summary"] == ("The last 3 deploys and 1 rollback: 2 succeeded, 1 failed, 1 running; "
                                "the longest took 8.0s.")
    assert chart["longest"] == "8.0s"


def test_thirty_runs_fit_and_short_runs_stay_visible() -> None:
    runs = [_run(i, "deploy", "succeeded", 1000.0 + i * 60, 0.01 if i % 2 else 200.0) for i in range(1, 31)]
    chart = deploy_chart(runs, now=10_000.0)
    assert chart is not None and len(chart["bars"]) == 30
    assert chart["bars"][-1]["x"] + chart["bars"][-1]["width"] <= WIDTH
    assert min(b["height"] for b in chart["bars"]) == 2.0  # a quick run is still a visible sliver
    assert chart["longest"] == "3.3m"
