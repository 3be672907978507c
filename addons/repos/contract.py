"""What other addons may use of the repos addon: the repo catalogue, one repo's read API, commits, the sync event."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from appliance.datakeys import DataKey

from .events import RepoSynced

__all__ = ["REPOS", "Commit", "CommitRange", "RepoCatalog", "RepoSource", "RepoSynced", "SyncOutcome"]


@dataclass(frozen=True)
class Commit:
    """One commit of a tracked branch."""

    sha: str
    short: str
    message: str
    author: str
    time: float

    @property
    def subject(self) -> str:
        """The first line of the message."""
        lines = self.message.strip().splitlines()
        return lines[0] if lines else ""


@dataclass(frozen=True)
class CommitRange:
    """The commits between two revisions that touch a path: the newest few and how many there are."""

    commits: tuple[Commit, ...]  # newest first, at most the limit asked for
    total: int


class RepoSource(Protocol):
    """Read-only access to one fetched repository (paths never leave it)."""

    name: str
    branch: str

    @property
    def head(self) -> str | None:
        """The last fetched commit of the tracked branch."""

    async def async_commit(self, rev: str) -> Commit:
        """One commit; NotFound when it is not in the clone."""

    async def async_export(self, rev: str, subpath: str, dest: Path) -> None:
        """Write a folder's tree at `rev` into `dest`."""

    async def async_changed_paths(self, old: str | None, new: str) -> list[str]:
        """Paths changed between two commits."""

    async def async_commits_between(self, old: str | None, new: str, *, path: str = ".",
                                    limit: int = 20) -> CommitRange:
        """Commits reachable from `new` but not `old` that change `path` (every one when `old` is None)."""

    async def async_has_path(self, rev: str, relpath: str) -> bool:
        """True when `relpath` exists at `rev`."""

    async def async_list_dirs(self, rev: str, pattern: str) -> list[str]:
        """Folders matching a glob at `rev`."""


class SyncOutcome(Protocol):
    """The result of a sync."""

    error: str | None


class RepoCatalog(Protocol):
    """Every configured repo, and syncing them."""

    @property
    def names(self) -> list[str]:
        """The configured repo names."""

    def get(self, name: str) -> RepoSource:
        """One repo; NotFound for an unknown name."""

    async def async_sync(self, name: str, *, trigger: str, reason: str, actor: str | None = None) -> Any:
        """Fetch a repo now and wait (fires RepoSynced when it moved)."""

    async def async_request_sync(self, name: str, *, trigger: str, reason: str, actor: str | None = None) -> int:
        """Queue a fetch (coalesced per repo); returns its run id."""


REPOS: DataKey[RepoCatalog] = DataKey("repos")
