"""Benchmark: writing a revision of a 1,000-file stack into its working folder, next to rsync and a plain copy.

Run: .venv/bin/python bench/stacks_workdir.py [--files 1000] [--changed 10] [--rounds 5]

Three cases, each on a working folder that also holds 1,000 untracked data files (which must stay):
- first: the first revision into an empty working folder;
- change: a revision that changes `--changed` files (and adds and removes one);
- same: the same revision again (nothing to write).
Peers on the same trees in the same run: `rsync -a` of the snapshot over the folder (it would need
`--exclude` lists to keep data safe with `--delete`, so it runs without), and `shutil.copytree`
with `dirs_exist_ok` (the floor a naive "copy the checkout over it" costs).
Target: ≤ 1 s for each case at 1,000 files.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addons.stacks.workdir import WorkingFolder, build_manifest, write_manifest  # noqa: E402

TARGET = 1.0


def make_snapshot(path: Path, files: int, version: int, changed: int) -> dict[str, str]:
    """A rendered stack of `files` files in 20 folders; the first `changed` differ per version."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / "compose.yaml").write_text("services: {}\n")
    for i in range(files - 1):
        rel = path / f"conf{i % 20}" / f"file{i}.txt"
        rel.parent.mkdir(exist_ok=True)
        tag = version if i < changed else 0
        rel.write_text(f"line {i} of version {tag}\n" * 20)
    # One file comes and goes with each version.
    (path / f"extra-{version}.txt").write_text("extra\n")
    manifest = build_manifest(path)
    write_manifest(path, manifest)
    return manifest


def add_data(work: Path, files: int) -> None:
    """What containers write: untracked files beside the tracked ones."""
    for i in range(files):
        target = work / "data" / f"d{i % 10}" / f"row{i}.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x" * 512)


def timed(func: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def run_case(base: Path, files: int, changed: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Time each case for Dockmaster and the peers; returns seconds per round."""
    results: dict[str, dict[str, list[float]]] = {c: {"dockmaster": [], "rsync": [], "copytree": []}
                                                   for c in ("first", "change", "same")}
    snaps = [base / "snap1", base / "snap2"]
    manifests = [make_snapshot(snaps[0], files, 1, changed), make_snapshot(snaps[1], files, 2, changed)]
    has_rsync = shutil.which("rsync") is not None
    for _ in range(rounds):
        for tool in ("dockmaster", "rsync", "copytree"):
            if tool == "rsync" and not has_rsync:
                continue
            case_root = base / f"{tool}-stack"
            shutil.rmtree(case_root, ignore_errors=True)
            folder = WorkingFolder(case_root)
            folder.root.mkdir(parents=True)
            add_data(folder.root, files)

            def apply(index: int, tool: str = tool, folder: WorkingFolder = folder) -> None:
                if tool == "dockmaster":
                    folder.sync(snaps[index], manifests[index])
                elif tool == "rsync":
                    subprocess.run(["rsync", "-a", f"{snaps[index]}/", f"{folder.root}/"], check=True)
                else:
                    shutil.copytree(snaps[index], folder.root, dirs_exist_ok=True)

            results["first"][tool].append(timed(lambda: apply(0)))
            results["change"][tool].append(timed(lambda: apply(1)))
            results["same"][tool].append(timed(lambda: apply(1)))
            data = list((folder.root / "data").rglob("*.db"))
            assert len(data) == files, f"{tool} lost data files"
    return results


def main() -> int:
    """Print the figures side by side; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dm-bench-workdir-") as tmp:
        results = run_case(Path(tmp), args.files, args.changed, args.rounds)
    print(f"writing a {args.files}-file revision into a working folder that holds {args.files} data files "
          f"(median of {args.rounds}, seconds)")
    print(f"{'case':<8} {'dockmaster':>11} {'rsync -a':>10} {'copytree':>10}  target")
    missed = False
    for case, tools in results.items():
        figures = {tool: statistics.median(values) if values else None for tool, values in tools.items()}
        ours = figures["dockmaster"] or 0.0
        missed |= ours > TARGET
        cells = " ".join(f"{figures[t]:>10.3f}" if figures[t] is not None else f"{'n/a':>10}"
                         for t in ("rsync", "copytree"))
        print(f"{case:<8} {ours:>11.3f} {cells}  ≤ {TARGET:g} s {'ok' if ours <= TARGET else 'MISSED'}")
    print("dockmaster also removes files the previous revision tracked and refuses to overwrite untracked "
          "ones; the peers do neither (rsync without --delete leaves removed files; with it, data goes)")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
