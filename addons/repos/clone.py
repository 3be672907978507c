"""The working clone of one repo: clone and fetch of the tracked branch, recovery, bounded packs.

Every method here blocks (GitPython runs git processes): call them through `app.async_run_blocking`.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from .auth import GitAuth
from .errors import describe_failure

_LOGGER = logging.getLogger(__name__)

# gc --auto repacks everything into one pack once more than PACK_LIMIT packs exist, and packs
# loose objects once roughly LOOSE_LIMIT of them pile up: together they keep fetch time flat.
PACK_LIMIT = 8
LOOSE_LIMIT = 1000
_REPO_CONFIG = {
    ("maintenance", "auto"): "false",  # fetch must not start its own (detached) maintenance
    ("gc", "autoDetach"): "false",  # our gc --auto runs in the foreground, inside the sync
    ("gc", "autoPackLimit"): str(PACK_LIMIT),
    ("gc", "auto"): str(LOOSE_LIMIT),
}
_CORRUPT_MARKERS = ("bad object", "corrupt", "unable to read", "did not send all necessary objects",
                    "missing blob", "missing tree", "fatal: loose object")


class FetchError(Exception):
    """A sync that could not complete; the message says why in words."""

    def __init__(self, message: str, output: list[str] | None = None) -> None:
        """Keep the cause and the git output lines for the run log."""
        super().__init__(message)
        self.output = output or []


@dataclass
class FetchOutcome:
    """What one sync found."""

    revision: str
    previous: str | None
    changed: bool
    new_commits: int | None
    rewritten: bool
    commits: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    packs: int = 0
    seconds: float = 0.0


class GitClone:
    """The clone at `path`; one sync at a time, also across processes (a lock file beside it)."""

    def __init__(self, name: str, path: Path, branch: str, auth: GitAuth, *, timeout: float,
                 depth: int | None = None) -> None:
        """Describe the clone; nothing touches the disk yet."""
        self.name = name
        self.path = path
        self.branch = branch
        self.auth = auth
        self.timeout = timeout
        self.depth = depth

    @property
    def tracking_ref(self) -> str:
        """The local ref that mirrors the tracked branch."""
        return f"refs/remotes/origin/{self.branch}"

    # --- the sync -----------------------------------------------------------------------

    def sync(self, previous: str | None) -> FetchOutcome:
        """Clone or fetch the tracked branch and check it out; blocks. Raises FetchError."""
        started = time.monotonic()
        with self._process_lock():
            notes = self.recover()
            try:
                revision = self._fetch()
            except FetchError as err:
                output = "\n".join(err.output).lower()
                # A full disk also makes reads fail; removing the clone then would only lose it.
                if "no space left" in output or not any(marker in output for marker in _CORRUPT_MARKERS):
                    raise
                # A damaged object store cannot heal by fetching again: start from a fresh clone.
                self._remove("the clone's object store is damaged")
                notes.append("the clone was damaged; removed it and cloned again")
                revision = self._fetch()
            self._checkout(revision)
            packs = self._maintain(changed=revision != previous)
            outcome = self._describe(previous, revision)
        outcome.notes = notes
        outcome.packs = packs
        outcome.seconds = time.monotonic() - started
        return outcome

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Serialise syncs of this clone with other Dockmaster processes (a one-shot CLI run)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.parent / f".{self.name}.sync-lock"
        deadline = time.monotonic() + self.timeout
        with lock_path.open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise FetchError("another Dockmaster process is syncing this repo") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def recover(self) -> list[str]:
        """Remove a half-done clone and stale lock files; returns what was done, in words."""
        notes: list[str] = []
        if not self.path.exists():
            return notes
        if not (self.path / ".git").is_dir() or not self._head_valid():
            self._remove("it has no valid HEAD (an interrupted clone)")
            notes.append("removed a half-done clone (no valid HEAD); cloning again")
            return notes
        for lock in self._lock_files():
            rel = lock.relative_to(self.path)
            if not self._lock_is_stale(lock):
                raise FetchError(f"{rel} is held by a running git process; the sync will be retried later")
            lock.unlink(missing_ok=True)
            _LOGGER.warning("Repo %s: removed stale %s", self.name, rel)
            notes.append(f"removed a stale {rel} left by an interrupted git process")
        return notes

    def _remove(self, why: str) -> None:
        _LOGGER.warning("Repo %s: removing %s because %s", self.name, self.path, why)
        shutil.rmtree(self.path)

    def _head_valid(self) -> bool:
        status, _, _ = self._run("rev-parse", "--verify", "-q", "HEAD^{commit}")
        return status == 0

    def _lock_files(self) -> list[Path]:
        gitdir = self.path / ".git"
        found = list(gitdir.glob("*.lock"))
        for sub in ("refs", "objects/info"):
            if (gitdir / sub).is_dir():
                found.extend((gitdir / sub).rglob("*.lock"))
        return found

    def _lock_is_stale(self, lock: Path) -> bool:
        """Older than the fetch timeout, or no git process works in this clone."""
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True
        if age > self.timeout:
            return True
        running = git_process_in(self.path)
        return running is False

    def _fetch(self) -> str:
        """Create the clone when missing, fetch only the tracked branch; returns its commit."""
        if not self.path.exists():
            self.path.mkdir(parents=True)
            self._check("init", "-q", f"--initial-branch={self.branch}", action="create the clone")
        self._ensure_config()
        args = ["fetch", "--quiet", "--no-tags", "--prune", "--no-auto-maintenance",
                "--no-write-fetch-head", "--no-recurse-submodules"]
        if self.depth:
            args.append(f"--depth={self.depth}")
        args += ["origin", f"+refs/heads/{self.branch}:{self.tracking_ref}"]
        self._check(*args, action="fetch")
        return self._check("rev-parse", "--verify", f"{self.tracking_ref}^{{commit}}", action="read the branch")

    def _ensure_config(self) -> None:
        """Point `origin` at the clean URL (never a credential) and keep maintenance settings."""
        wanted = {**_REPO_CONFIG, ("remote \"origin\"", "url"): self.auth.url,
                  ("remote \"origin\"", "fetch"): f"+refs/heads/{self.branch}:{self.tracking_ref}"}
        with git.Repo(self.path) as repo:
            reader = repo.config_reader("repository")
            stale = {k: v for k, v in wanted.items() if _read(reader, *k) != _typed(v)}
            if stale:
                with repo.config_writer("repository") as writer:
                    for (section, option), value in stale.items():
                        writer.set_value(section, option, value)

    def _checkout(self, revision: str) -> None:
        """Make the working tree show the fetched commit (a local branch of the same name)."""
        status, current, _ = self._run("rev-parse", "--verify", "-q", "HEAD^{commit}")
        if status == 0 and current == revision:
            return
        self._check("-c", "advice.detachedHead=false", "checkout", "-q", "--force", "-B", self.branch,
                    revision, action="check out the new revision")

    def _maintain(self, *, changed: bool) -> int:
        """Run gc --auto when objects arrived or packs piled up; returns the pack count after."""
        if changed or self.pack_count() > PACK_LIMIT:
            self._check("gc", "--auto", "--quiet", action="pack the clone")
        return self.pack_count()

    def pack_count(self) -> int:
        """Number of pack files in the clone."""
        return len(list((self.path / ".git" / "objects" / "pack").glob("*.pack")))

    def _describe(self, previous: str | None, revision: str) -> FetchOutcome:
        """Count and list the new commits between the last fetched revision and this one."""
        fmt = "--format=%H%x1f%h%x1f%s"
        if previous == revision:
            return FetchOutcome(revision, previous, False, 0, False)
        known = bool(previous) and self._run("cat-file", "-e", f"{previous}^{{commit}}")[0] == 0
        if previous and known:
            rewritten = self._run("merge-base", "--is-ancestor", previous, revision)[0] != 0
            span = revision if rewritten else f"{previous}..{revision}"
            count = None if rewritten else int(self._check("rev-list", "--count", span, action="count commits"))
            log = self._check("log", fmt, "-n", "10", span, "--", action="read commits")
        else:
            rewritten, count = False, None
            log = self._check("log", fmt, "-n", "1", revision, "--", action="read commits")
        commits = []
        for line in log.splitlines():
            sha, short, subject = ([*line.split("\x1f"), "", ""])[:3]
            commits.append({"sha": sha, "short": short, "subject": subject})
        return FetchOutcome(revision, previous, True, count, rewritten, commits)

    # --- running git --------------------------------------------------------------------

    def _run(self, *args: str) -> tuple[int, str, str]:
        """Run git in the clone with the remote's credentials in its environment only."""
        status, out, err = git.Git(self.path).execute(
            ["git", *args], env=self.auth.env(), with_extended_output=True, with_exceptions=False,
            kill_after_timeout=self.timeout,
        )
        return int(status), str(out), str(err)

    def _check(self, *args: str, action: str) -> str:
        """Run git and raise FetchError with the cause in words when it fails."""
        status, out, err = self._run(*args)
        if status != 0:
            lines = [line for line in err.splitlines() if line.strip()]
            message = describe_failure(err, action=action, branch=self.branch, url=self.auth.url,
                                       timeout=self.timeout, known_hosts=self.auth.known_hosts)
            raise FetchError(message, lines)
        return out


def _read(reader: Any, section: str, option: str) -> object:
    try:
        return reader.get_value(section, option)
    except (configparser.NoSectionError, configparser.NoOptionError):
        return None


def _typed(value: str) -> object:
    """GitPython reads numbers and booleans typed; compare like with like."""
    if value in ("true", "false"):
        return value == "true"
    return int(value) if value.isdigit() else value


def git_process_in(path: Path) -> bool | None:
    """True when a git process works in `path`; None when /proc cannot tell (not Linux)."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return None
    root = str(path.resolve())
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("git"):
                continue
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone, or another user's process
        if cwd == root or cwd.startswith(root + os.sep):
            return True
    return False
