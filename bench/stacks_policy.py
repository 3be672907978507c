"""Benchmark: the working-folder rule and the deploy policy on a 10-service stack, next to its `compose config` call.

Run: .venv/bin/python bench/stacks_policy.py [--services 10] [--rounds 200]

A stack folder with `--services` services (binds of ./data and of a host folder, env files, a build
context, configs, secrets, safe capabilities, an include and an extends) is checked the way a
deploy checks it: the raw files before compose runs (`containment.scan_sources`), then the resolved
model (`guard.check`: paths and policy, bind sources resolved on disk). Beside it, in the same run,
the hermetic `compose config --format json` of the same stack, which every deploy already pays.
Target: the checks add ≤ 20 ms (median) to a deploy of a 10-service stack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addons.stacks import guard, hermetic  # noqa: E402
from addons.stacks.containment import scan_sources  # noqa: E402
from addons.stacks.policy import Places, effective  # noqa: E402
from appliance.compose_cli import compose_command  # noqa: E402

TARGET_MS = 20.0


def make_stack(root: Path, services: int) -> list[str]:
    """Write a stack of `services` services into `root`; returns its compose files."""
    (root / "data").mkdir(parents=True)
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "app.env").write_text("A=1\nB=2\n")
    (root / "labels").write_text("team=home\n")
    (root / "conf.txt").write_text("x\n")
    (root / "base.yaml").write_text("services:\n  base:\n    environment: {FROM_BASE: '1'}\n")
    (root / "extra.yaml").write_text("services:\n  extra:\n    image: ghcr.io/me/extra:1\n")
    lines = ["include: [extra.yaml]", "services:"]
    for i in range(services):
        lines += [
            f"  s{i}:",
            f"    image: ghcr.io/me/app{i}:1.{i}",
            "    extends: {file: base.yaml, service: base}",
            "    env_file: [app.env]",
            "    label_file: labels",
            "    cap_add: [CHOWN, NET_BIND_SERVICE]",
            f"    volumes: ['./data/s{i}:/data', '/mnt/user/media:/media:ro', '/etc/localtime:/etc/localtime:ro']",
            "    configs: [conf]",
            "    secrets: [token]",
        ]
        if i == 0:
            lines += ["    build: {context: app}"]
    lines += ["configs:", "  conf: {file: ./conf.txt}", "secrets:", "  token: {file: ./app.env}"]
    (root / "compose.yaml").write_text("\n".join(lines) + "\n")
    return ["compose.yaml"]


def compose_config(root: Path, files: list[str]) -> tuple[dict[str, object], float]:
    """The resolved model and how long the hermetic `compose config` took (seconds)."""
    argv = compose_command()
    if not argv:
        raise SystemExit("Docker Compose v2 is not installed")
    home = hermetic.make_home()
    try:
        env = hermetic.compose_env({}, home=home)
        start = time.perf_counter()
        out = subprocess.run([*argv, "-p", "bench", "--project-directory", str(root),
                              *[a for f in files for a in ("-f", str(root / f))], "config", "--format", "json"],
                             capture_output=True, text=True, env=env, check=True, timeout=120)
        return json.loads(out.stdout), time.perf_counter() - start
    finally:
        hermetic.remove_home(home)


def main() -> int:
    """Measure and print; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "config" / ".dockmaster" / "stacks" / "bench" / "work"
        files = make_stack(root, args.services)
        policy = effective({"registries": ["ghcr.io/me"], "bind_roots": ["/mnt/user"]}, None)
        places = Places(own=root, dockmaster=(str(base / "config"), str(base / "config" / ".dockmaster")))
        configs = []
        model: dict[str, object] = {}
        for _ in range(5):
            model, took = compose_config(root, files)
            configs.append(took * 1000)
        checks = []
        found = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            found = scan_sources(root, files) + guard.check(model, policy, places)
            checks.append((time.perf_counter() - start) * 1000)
        assert found == [], found  # the stack is clean: every check ran to the end
    checks.sort()
    median, p95 = statistics.median(checks), checks[int(len(checks) * 0.95) - 1]
    config_median = statistics.median(configs)
    verdict = "ok" if median <= TARGET_MS else "MISSED"
    print(f"stacks policy + working-folder checks, {args.services} services ({len(model.get('services', {}))} "
          f"with include), {args.rounds} rounds")
    print(f"    checks (raw files + model)     median {median:6.2f} ms   p95 {p95:6.2f} ms   "
          f"(target <= {TARGET_MS:g} ms: {verdict})")
    print(f"    compose config (hermetic)      median {config_median:6.1f} ms   (paid by every deploy already)")
    print(f"    checks / compose config        {median / config_median * 100:5.1f} %")
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
