"""Real git remotes for tests: a bare repository and a work tree that commits and pushes to it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
