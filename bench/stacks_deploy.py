"""Benchmark: stacks deploy overhead vs a hand-run `docker compose up`, a 100-stack no-change poll, Harbormaster.

Run: .venv/bin/python bench/stacks_deploy.py [--stacks 20] [--many 100] [--no-harbormaster]
Everything is local: bare git repos on disk, busybox containers with no published ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER  # noqa: E402
from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE  # noqa: E402
from appliance.compose_cli import compose_command  # noqa: E402
from appliance.config import check_config  # noqa: E402
from appliance.http.app import async_build_appliance  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
HM_VENV = Path("/tmp/hm-venv")


def git(cwd: Path, *args: str) -> str:
    """Run git quietly."""
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def compose_text(image: str, content: str) -> str:
    """A busybox httpd service with a healthcheck that answers fast during its start period."""
    return f"""services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo {content} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 3
"""


class Remote:
    """A bare repo with a work tree of N stack folders."""

    def __init__(self, root: Path, prefix: str, count: int, image: str) -> None:
        """Create the repo and commit every stack."""
        self.bare, self.work, self.image, self.prefix = root / "remote.git", root / "work", image, prefix
        root.mkdir(parents=True)
        git(root, "init", "-q", "--bare", "--initial-branch=main", str(self.bare))
        git(root, "init", "-q", "--initial-branch=main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.names = [f"{prefix}{i:03d}" for i in range(count)]
        for name in self.names:
            self.write(name, "v0")
        (self.work / "README.md").write_text("bench\n")
        self.commit("All stacks")

    def write(self, name: str, content: str) -> None:
        """Write one stack's compose file."""
        folder = self.work / "stacks" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compose.yaml").write_text(compose_text(self.image, content))

    def commit(self, message: str) -> str:
        """Commit everything and push."""
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/main")
        return git(self.work, "rev-parse", "HEAD")


async def start_app(root: Path, remote: Remote) -> Any:
    """The real appliance (repos + stacks with discover), without HTTP."""
    config = {
        "dockmaster": {"name": "bench", "data_dir": str(root / "data"), "log_level": "warning"},
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [{"discover": {"repo": "infra", "path": "stacks/*", "health_timeout": "60s"}},
                   {"settings": {"max_parallel": 4, "drift_check": "0 0 1 1 *"}}],
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    checked = check_config(path)
    assert checked.ok, checked.issues
    app = await async_build_appliance(checked)
    assert "stacks" in app.loaded_addons, app.addon_errors
    await app.async_start()
    return app


async def idle(app: Any, timeout: float = 600) -> None:
    """Wait until no run is active and no listener task is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = any(app.scheduler.busy(f"stack:{n}") for n in app.data[STACKS_SERVICE].engine.specs())
        if not (app.runs.active or busy or app.bus._tasks):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("appliance still busy")


def remove_projects(client: docker.DockerClient, prefix: str) -> None:
    """Remove every container and network of our bench projects on one engine."""
    for container in client.api.containers(all=True, filters={"label": "com.docker.compose.project"}):
        if (container.get("Labels") or {}).get("com.docker.compose.project", "").startswith(prefix):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(container["Id"], force=True)
    for network in client.networks.list():
        if network.name.startswith(prefix):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()


class Floor:
    """The same change done by hand: `docker compose up -d` (and `--wait`) recreating one service."""

    def __init__(self, argv: list[str], workdir: Path, project: str, image: str) -> None:
        """Start the hand-run project once (not timed)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.image = workdir, image
        self.base = [*argv, "-p", project, "-f", str(workdir / "compose.yaml")]
        (workdir / "compose.yaml").write_text(compose_text(image, "f0"))
        subprocess.run([*self.base, "up", "-d", "--wait"], check=True, capture_output=True)

    def time(self, content: str, *, wait: bool) -> float:
        """Change the content and time one `up -d` (with `--wait` when asked)."""
        (self.workdir / "compose.yaml").write_text(compose_text(self.image, content))
        start = time.perf_counter()
        subprocess.run([*self.base, "up", "-d", *(["--wait"] if wait else [])], check=True, capture_output=True)
        return time.perf_counter() - start

    def down(self) -> None:
        """Remove the hand-run project."""
        subprocess.run([*self.base, "down", "-t", "1"], check=True, capture_output=True)


async def bench_one_changed(root: Path, image: str, count: int, rounds: int, prefix: str,
                            floor: Floor) -> dict[str, Any]:
    """(a) one changed stack of `count`: trigger → healthy, against the hand-run floor."""
    remote = Remote(root / "git20", prefix, count, image)
    app = await start_app(root / "app20", remote)
    try:
        started = time.perf_counter()
        await idle(app)
        initial = time.perf_counter() - started
        engine = app.data[STACKS_SERVICE].engine
        target = remote.names[count // 3]
        times, plain, waited = [], [], []
        calls = 0
        for index in range(rounds):
            # The floor runs in the same round, under the same load (the other stacks keep running).
            plain.append(await asyncio.to_thread(floor.time, f"p{index}", wait=False))
            waited.append(await asyncio.to_thread(floor.time, f"w{index}", wait=True))
            remote.write(target, f"v{index + 1}")
            sha = remote.commit(f"change {target} #{index}")
            before = engine.compose.stats.calls
            start = time.perf_counter()
            await app.data[REPOS_MANAGER].async_sync("infra", trigger="webhook", reason="bench")
            await idle(app)
            times.append(time.perf_counter() - start)
            calls = engine.compose.stats.calls - before
            state = engine.states.get(target)
            assert state.deployed_revision == sha and state.health == "healthy", state
        return {"initial": initial, "dm": statistics.median(times), "calls": calls, "app": app, "remote": remote,
                "plain": statistics.median(plain), "waited": statistics.median(waited)}
    except BaseException:
        await stop(app)
        raise


async def no_change_polls(app: Any, remote: Any) -> dict[str, tuple[float, int, int]]:
    """A poll after a commit outside every stack, then a poll with no new commit: wall, compose calls, deploy runs."""
    engine = app.data[STACKS_SERVICE].engine
    results = {}
    for label, change in (("unrelated commit", True), ("no new commit", False)):
        if change:
            (remote.work / "README.md").write_text(f"bench {secrets.token_hex(4)}\n")
            remote.commit("docs only")
        before = engine.compose.stats.calls
        runs_before = len(await app.runs.list(kind="deploy", limit=500))
        start = time.perf_counter()
        await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="bench poll")
        await idle(app)
        results[label] = (time.perf_counter() - start, engine.compose.stats.calls - before,
                          len(await app.runs.list(kind="deploy", limit=500)) - runs_before)
    return results


async def bench_no_change(root: Path, image: str, count: int, prefix: str) -> dict[str, Any]:
    """(b) a poll of a repo with `count` deployed stacks: a new commit outside every stack, then no commit."""
    remote = Remote(root / "git100", prefix, count, image)
    app = await start_app(root / "app100", remote)
    try:
        started = time.perf_counter()
        await idle(app)
        initial = time.perf_counter() - started
        return {"initial": initial, "results": await no_change_polls(app, remote)}
    finally:
        await stop(app)


async def stop(app: Any) -> None:
    """Stop the appliance and close its store."""
    await app.async_stop()
    await app.store.async_close()


def harbormaster(root: Path, remote: Remote, target: str, image: str) -> dict[str, float] | None:
    """(c) Harbormaster on the same repo: a no-change pass and one changed stack (None when unavailable)."""
    binary = HM_VENV / "bin" / "harbormaster"
    if not binary.exists():
        return None
    hm_root = root / "hm"
    hm_root.mkdir()
    apps = {name: {"url": str(remote.bare), "branch": "main", "compose_config": f"stacks/{name}/compose.yaml"}
            for name in remote.names}
    (hm_root / "harbormaster.yml").write_text(yaml.safe_dump({"prune": False, "apps": apps}))
    (hm_root / "work").mkdir()

    def run() -> float:
        start = time.perf_counter()
        subprocess.run([str(binary), "run", "-c", str(hm_root / "harbormaster.yml"), "-d", str(hm_root / "work")],
                       cwd=hm_root, check=True, capture_output=True, timeout=900)
        return time.perf_counter() - start

    first = run()
    no_change = run()
    remote.write(target, "hm-changed")
    remote.commit(f"change {target} for harbormaster")
    changed = run()
    return {"first": first, "no_change": no_change, "changed": changed}


def main() -> int:
    """Run the three measurements and print them side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stacks", type=int, default=20)
    parser.add_argument("--many", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-harbormaster", action="store_true")
    args = parser.parse_args()
    client = docker.from_env()
    image = ensure_busybox_image(client)
    argv = compose_command()
    assert argv, "Docker Compose v2 is missing"
    tag = secrets.token_hex(3)
    prefix_a, prefix_b = f"bsa{tag}", f"bsb{tag}"
    root = Path(tempfile.mkdtemp(prefix="dm-bench-stacks-"))
    try:
        floor = Floor(argv, root / "floor", f"dm-floor-{tag}", image)
        try:
            a = asyncio.run(_run_a(root, image, args, prefix_a, floor))
        finally:
            floor.down()
        plain, waited = a["plain"], a["waited"]
        hm = None
        if not args.no_harbormaster:
            remove_projects(client, f"dm-{prefix_a}")
            try:
                hm = harbormaster(root, a["remote"], a["remote"].names[args.stacks // 3], image)
            except subprocess.SubprocessError as err:
                print(f"harbormaster failed: {err}")
        b = asyncio.run(bench_no_change(root, image, args.many, prefix_b))
    finally:
        remove_projects(client, f"dm-{prefix_a}")
        remove_projects(client, f"dm-{prefix_b}")
        remove_projects(client, f"dm-floor-{tag}")
        for container in client.api.containers(all=True, filters={"label": "com.docker.compose.project"}):
            labels = container.get("Labels") or {}
            # Harbormaster's projects: every container whose compose folder lies in our scratch dir.
            if labels.get("com.docker.compose.project.working_dir", "").startswith(str(root)):
                project = labels["com.docker.compose.project"]
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_container(container["Id"], force=True)
                for network in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
                    network.remove()
        shutil.rmtree(root, ignore_errors=True)

    overhead = a["dm"] - waited
    print(f"\n(a) one changed stack of {args.stacks} (median of {args.rounds})")
    print(f"    Dockmaster trigger -> healthy        {a['dm']:7.2f} s   ({a['calls']} compose calls)")
    print(f"    floor: docker compose up -d --wait   {waited:7.2f} s")
    print(f"    floor: docker compose up -d          {plain:7.2f} s   (no health wait)")
    print(f"    Dockmaster overhead                  {overhead:7.2f} s   (target <= 0.5 s: "
          f"{'ok' if overhead <= 0.5 else 'MISSED'})")
    print(f"    initial deploy of {args.stacks} stacks           {a['initial']:7.2f} s")
    print(f"\n(b) poll of a repo with {args.many} deployed stacks (initial deploy {b['initial']:.1f} s)")
    for label, (wall, calls, runs) in b["results"].items():
        verdict = "ok" if wall <= 1.0 and calls == 0 else "MISSED"
        print(f"    {label:<18} {wall:6.3f} s wall, {calls} compose invocations, {runs} deploy runs  "
              f"(target <= 1 s, 0 calls: {verdict})")
    print("\n(c) Harbormaster on the same repo of", args.stacks, "stacks")
    if hm is None:
        print("    not measured (install: python3 -m venv /tmp/hm-venv && /tmp/hm-venv/bin/pip install "
              "docker-harbormaster)")
    else:
        print(f"    first pass (clone + up all)          {hm['first']:7.2f} s")
        print(f"    no-change pass                       {hm['no_change']:7.2f} s   vs Dockmaster "
              f"{b['results']['no new commit'][0]:.3f} s for {args.many} stacks")
        print(f"    one changed stack                    {hm['changed']:7.2f} s   vs Dockmaster {a['dm']:.2f} s")
    return 0


async def _run_a(root: Path, image: str, args: argparse.Namespace, prefix: str, floor: Floor) -> dict[str, Any]:
    result = await bench_one_changed(root, image, args.stacks, args.rounds, prefix, floor)
    await stop(result.pop("app"))
    return result


if __name__ == "__main__":
    sys.exit(main())
