"""Fixtures for the repos addon: real bare git remotes in tmp_path and the real app around them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.core import Appliance
from appliance.keys import APPLIANCE_KEY

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its stdout (raises on failure)."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class GitRemote:
    """A bare repo (the remote) and a work tree that commits and pushes to it."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        """Create both repos with one initial commit on `branch`."""
        self.bare = root / "remote.git"
        self.work = root / "author"
        self.branch = branch
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "--bare", f"--initial-branch={branch}", str(self.bare))
        git(root, "init", "-q", f"--initial-branch={branch}", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.commit({"README.md": "hello\n"}, "Initial commit")

    def commit(self, files: dict[str, str | None], message: str, *, push: bool = True) -> str:
        """Write (or with None delete) files, commit, push; returns the new sha."""
        for rel, content in files.items():
            target = self.work / rel
            if content is None:
                git(self.work, "rm", "-q", "-r", rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            git(self.work, "add", rel)
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        if push:
            self.push()
        return git(self.work, "rev-parse", "HEAD")

    def symlink(self, rel: str, target: str, message: str) -> str:
        """Commit a symlink `rel -> target` and push."""
        link = self.work / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        git(self.work, "add", rel)
        return self.commit({}, message)

    def push(self, *, force: bool = False) -> None:
        """Push the branch to the bare remote."""
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{self.branch}")

    @property
    def head(self) -> str:
        """The remote's branch tip."""
        return git(self.bare, "rev-parse", f"refs/heads/{self.branch}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitDaemon:
    """`git daemon` serving a folder on 127.0.0.1 (a network remote that can go down)."""

    def __init__(self, root: Path) -> None:
        """Start serving every repo under `root`."""
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}", "--listen=127.0.0.1",
             f"--port={self.port}", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def url_for(self, path: Path) -> str:
        """The git:// URL of a repo under the served root."""
        return f"git://127.0.0.1:{self.port}/{path.relative_to(self.root)}"

    def stop(self) -> None:
        """Stop serving; the port then refuses connections."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    """A git daemon serving tmp_path/remotes."""
    (tmp_path / "remotes").mkdir(exist_ok=True)
    daemon = GitDaemon(tmp_path / "remotes")
    yield daemon
    daemon.stop()


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    """A bare remote with one commit on main."""
    return GitRemote(tmp_path / "remotes" / "infra")


async def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `check()` (sync or async) is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def repo_entry(url: str | Path, **extra: Any) -> dict[str, Any]:
    """One `repos:` item named infra."""
    return {"name": "infra", "url": str(url), **extra}


async def sync_runs(app: Appliance, name: str = "infra") -> list[dict[str, Any]]:
    """Every sync run of a repo, oldest first."""
    return list(reversed(await app.runs.list(kind="sync", target=name, limit=500)))


async def settled(app: Appliance, name: str = "infra") -> list[dict[str, Any]]:
    """Wait until no sync run of the repo is queued or running; returns all runs."""
    async def _done() -> list[dict[str, Any]] | None:
        runs = await sync_runs(app, name)
        # A run leaves `active` only once its final row is committed.
        return runs if runs and not any(r["id"] in app.runs.active for r in runs) else None

    result: list[dict[str, Any]] = await wait_for(_done)
    return result


AppFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
def make_repos_app(make_client: Any) -> AppFactory:
    """The real app with a `repos:` block; waits for the startup sync and returns (client, app)."""

    async def _make(repos: list[dict[str, Any]], *, wait: bool = True, **kwargs: Any) -> tuple[Any, Appliance]:
        client = await make_client({"repos": repos}, **kwargs)
        app = client.app[APPLIANCE_KEY]
        if wait:
            for entry in repos:
                await settled(app, entry["name"])
        return client, app

    return _make
