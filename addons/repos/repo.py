"""One configured repository: its clone, its last fetched revision, and safe reads of its tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import tree
from .auth import GitAuth
from .clone import GitClone
from .contract import Commit, CommitRange
from .schema import RepoConfig

if TYPE_CHECKING:
    from appliance.core import Appliance


@dataclass
class SyncResult:
    """What a sync run did: the revision before and after, whether it changed, or why it failed."""

    repo: str
    run_id: int
    previous: str | None
    revision: str | None
    changed: bool
    error: str | None


@dataclass
class SyncState:
    """Persisted status of a repo (kv namespace `repos`), so it survives restarts."""

    head: str | None = None
    head_commit: dict[str, Any] = field(default_factory=dict)
    branch: str | None = None
    last_sync: float | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_run_id: int | None = None
    last_trigger: str | None = None
    last_change: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the store."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SyncState:
        """Read a stored state, ignoring keys this version does not know."""
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Repo:
    """A configured repo; `head` is the last commit of `branch` fetched successfully."""

    def __init__(self, app: Appliance, conf: RepoConfig) -> None:
        """Build from a validated config entry; the clone lives at data_dir/repos/<name>."""
        self.app = app
        self.conf = conf
        self.name: str = conf["name"]
        self.branch: str = conf["branch"]
        self.poll: str | None = conf.get("poll")
        self.auth = GitAuth.from_config(conf, app.config_path.parent)
        self.url: str = self.auth.url
        self.path: Path = app.data_dir / "repos" / self.name
        self.fetch_timeout: float = conf["fetch_timeout"].total_seconds()
        self.clone = GitClone(self.name, self.path, self.branch, self.auth,
                              timeout=self.fetch_timeout, depth=conf.get("depth"))
        self.state = SyncState()
        # The generated deploy key's public half and where to paste it (`ssh_key: generate`), or None.
        self.deploy_key: dict[str, Any] | None = None

    @property
    def head(self) -> str | None:
        """The last fetched commit sha of the tracked branch."""
        return self.state.head

    async def async_changed_paths(self, old: str | None, new: str) -> list[str]:
        """Repo-relative paths changed between `old` and `new`; every file when `old` is None."""
        result: list[str] = await self.app.async_run_blocking(tree.changed_paths, self.path, old, new)
        return result

    async def async_commit(self, rev: str) -> Commit:
        """One commit: sha, short sha, message, author and time."""
        info: dict[str, Any] = await self.app.async_run_blocking(tree.commit_info, self.path, rev)
        return Commit(**info)

    async def async_commits_between(self, old: str | None, new: str, *, path: str = ".",
                                    limit: int = 20) -> CommitRange:
        """Commits in `old..new` that change `path`, newest first (at most `limit`), and their count."""
        infos, total = await self.app.async_run_blocking(tree.commits_between, self.path, old, new, path, limit)
        return CommitRange(tuple(Commit(**info) for info in infos), total)

    async def async_export(self, rev: str, subpath: str, dest: Path) -> None:
        """Write the tree of `subpath` at `rev` into `dest`; refuses paths or symlinks leading out."""
        await self.app.async_run_blocking(tree.export, self.path, rev, subpath, dest)

    async def async_read_file(self, rev: str, relpath: str) -> bytes:
        """A file's bytes at `rev` (same path rules as export; NotFound when missing)."""
        result: bytes = await self.app.async_run_blocking(tree.read_file, self.path, rev, relpath)
        return result

    async def async_has_path(self, rev: str, relpath: str) -> bool:
        """True when `relpath` exists at `rev`."""
        result: bool = await self.app.async_run_blocking(tree.has_path, self.path, rev, relpath)
        return result

    async def async_list_dirs(self, rev: str, pattern: str) -> list[str]:
        """Folders matching a glob like `stacks/*` at `rev` (for stacks `discover`)."""
        result: list[str] = await self.app.async_run_blocking(tree.list_dirs, self.path, rev, pattern)
        return result

    def as_dict(self) -> dict[str, Any]:
        """The API view: no credential, ever."""
        state = self.state
        return {
            "name": self.name,
            "url": self.url,
            "branch": self.branch,
            "auth": self.auth.kind if not self.auth.token else "https-token",
            "poll": self.poll,
            "head": state.head,
            "head_short": (state.head_commit.get("short") or (state.head or "")[:7]) or None,
            "head_message": state.head_commit.get("subject"),
            "last_sync": state.last_sync,
            "last_status": state.last_status,
            "last_error": state.last_error,
            "last_run_id": state.last_run_id,
            "last_trigger": state.last_trigger,
            "last_change": state.last_change,
            "known_hosts": str(self.auth.known_hosts) if self.auth.known_hosts else None,
            "deploy_key": self.deploy_key,
        }
