"""Idle cost of `dockmaster run`: RSS after 60 s and CPU % of one core over the last 30 s.

Uses the repository's `config.example.yaml` when it exists (refusing one that would reach any
address outside 127.0.0.0/8), else a minimal config with the core and a maintenance window.
Targets: RSS <= 60 MB, CPU <= 0.5 %.

    .venv/bin/python bench/core_idle.py [--warmup 30] [--window 30] [--minimal]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKMASTER = str(Path(sys.executable).parent / "dockmaster")
MINIMAL = """\
dockmaster: {name: idle-bench}
http: {host: 127.0.0.1}
windows:
  nightly: {cron: "0 2 * * *", duration: 3h}
"""
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp: Path, minimal: bool) -> tuple[Path, str]:
    example = ROOT / "config.example.yaml"
    if minimal or not example.exists():
        path = tmp / "config.yaml"
        path.write_text(MINIMAL)
        return path, "minimal config (core + windows)"
    text = example.read_text()
    for literal in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text):
        try:
            if not ipaddress.ip_address(literal).is_loopback and literal != "0.0.0.0":
                sys.exit(f"refusing: config.example.yaml targets {literal}, outside 127.0.0.0/8")
        except ValueError:
            continue
    return example, "config.example.yaml"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--minimal", action="store_true", help="the core alone, not config.example.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config, what = _config(Path(tmp), args.minimal)
        port = _free_port()
        log = Path(tmp) / "run.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([DOCKMASTER, "run", "-c", str(config), "--host", "127.0.0.1",
                                     "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        print(log.read_text(), file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            time.sleep(args.warmup)
            cpu_before, t_before = _cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.window)
            cpu_after, t_after = _cpu_seconds(proc.pid), time.monotonic()
            rss = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(20)
    cpu = 100 * (cpu_after - cpu_before) / (t_after - t_before)
    total = args.warmup + args.window
    print(f"config: {what}")
    print(f"RSS after {total:.0f} s: {rss:.1f} MB (target <= 60 MB) {'OK' if rss <= 60 else 'MISSED'}")
    print(f"CPU over the last {args.window:.0f} s: {cpu:.2f} % of one core (target <= 0.5 %) "
          f"{'OK' if cpu <= 0.5 else 'MISSED'}")
    return 0 if rss <= 60 and cpu <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
