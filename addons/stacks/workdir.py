"""A stack's stable working folder: the tracked files of a revision are written in, everything else is left alone.

Compose runs every deploy, rollback and lifecycle action of a stack in one folder,
`data_dir/stacks/<name>/work/`, so `./data` means the same folder at every revision. A revision's
rendered files come from a snapshot (`snapshots/<run>-<sha>/`, which holds those files and a manifest
of their digests, nothing else); syncing a snapshot into the working folder writes what changed,
removes files the previous revision tracked and this one does not, and never touches a file no
revision tracked. Every function here blocks on file I/O: run it in an executor.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import DockmasterError

from .render import GENERATED_PREFIX

MANIFEST = ".dockmaster.manifest.json"
TRACKED = "tracked.json"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
MAX_LISTED = 5

# path relative to the stack folder -> "<x|->:<sha256>" for a file (x: executable), "link:<target>" for a symlink
Manifest = dict[str, str]


class WorkdirConflict(DockmasterError):
    """A tracked file would overwrite something the repo does not track; nothing was written."""

    status = 409
    code = "workdir_conflict"
    blames_revision = False  # moving the file away fixes it: the same revision is tried again


@dataclass
class SyncReport:
    """What one sync changed in a working folder."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def describe(self) -> str:
        """One line for the run log."""
        return (f"{len(self.written)} file(s) written, {len(self.removed)} removed, {self.unchanged} unchanged; "
                "untracked files were left as they are")


def _file_entry(data: bytes, mode: int) -> str:
    return f"{'x' if mode & 0o111 else '-'}:{hashlib.sha256(data).hexdigest()}"


def _is_generated(rel: str) -> bool:
    return rel.split("/", 1)[0].startswith(GENERATED_PREFIX)


def build_manifest(root: Path) -> Manifest:
    """The tracked files of a rendered snapshot with their digests (Dockmaster's own files excluded)."""
    manifest: Manifest = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if _is_generated(rel):
                continue
            if path.is_symlink():
                manifest[rel] = f"link:{os.readlink(path)}"
            else:
                manifest[rel] = _file_entry(path.read_bytes(), path.stat().st_mode)
    return manifest


def write_manifest(snapshot: Path, manifest: Manifest) -> None:
    """Store a snapshot's manifest beside its files."""
    _atomic_json(snapshot / MANIFEST, manifest)


def read_manifest(snapshot: Path) -> Manifest | None:
    """A snapshot's manifest, or None for a snapshot without one (made before working folders existed)."""
    try:
        data = json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _atomic_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class WorkingFolder:
    """One stack's working folder and the record of which files in it are tracked."""

    def __init__(self, base: Path) -> None:
        """`base` is `data_dir/stacks/<name>`; the folder is `base/work`."""
        self.base = base
        self.root = base / "work"

    def tracked(self) -> Manifest:
        """The files the last sync wrote (and so may replace or remove)."""
        try:
            data = json.loads((self.base / TRACKED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_tracked(self, manifest: Manifest) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        _atomic_json(self.base / TRACKED, manifest)

    def sync(self, snapshot: Path, manifest: Manifest) -> SyncReport:
        """Make the tracked files of the working folder those of `snapshot`; untracked files stay.

        Raises WorkdirConflict, before writing anything, when a tracked file would replace a file or
        folder that no revision tracked, or a path leads through a symlink.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        old = self.tracked()
        with _Tree(self.root) as tree:
            conflicts = [problem for rel in sorted(manifest)
                         if (problem := tree.conflict(rel, manifest[rel], old)) is not None]
            if conflicts:
                listed = "; ".join(conflicts[:MAX_LISTED])
                more = f" (+{len(conflicts) - MAX_LISTED} more)" if len(conflicts) > MAX_LISTED else ""
                raise WorkdirConflict(f"the working folder {self.root} holds files the repo does not track "
                                      f"where this revision has tracked ones: {listed}{more}; move or delete "
                                      "them by hand, Dockmaster never overwrites untracked files")
            # A crash from here on leaves a record that covers both revisions: the next sync still
            # knows every file it may replace or remove.
            self._save_tracked({**old, **manifest})
            report = SyncReport()
            for rel in sorted(set(old) - set(manifest), key=lambda r: r.count("/"), reverse=True):
                if tree.remove(rel):
                    report.removed.append(rel)
            for rel, entry in sorted(manifest.items()):
                if tree.write(rel, entry, snapshot / rel):
                    report.written.append(rel)
                else:
                    report.unchanged += 1
            tree.prune_empty({_parent(rel) for rel in report.removed}, keep={_parent(r) for r in manifest})
        self._save_tracked(manifest)
        return report

    def adopt_legacy(self, snapshot: Path, tracked: set[str]) -> list[str]:
        """Move what an old-style snapshot holds beyond its `tracked` files into the working folder.

        Before working folders, a snapshot was compose's project folder, so `./data` of the running
        revision lives in it. Each untracked entry is renamed (same file system: instant, inodes kept,
        so running containers keep writing to it) and a symlink is left in its place for containers
        that start again before the next deploy. The snapshot then gets a manifest of what is left.
        Returns the moved paths.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        moved: list[str] = []
        tracked_dirs = {"/".join(rel.split("/")[:i]) for rel in tracked for i in range(1, rel.count("/") + 1)}
        pending = [""]
        while pending:
            folder = pending.pop()
            for entry in sorted(os.scandir(snapshot / folder) if folder else os.scandir(snapshot),
                                key=lambda e: e.name):
                rel = f"{folder}/{entry.name}" if folder else entry.name
                if _is_generated(rel) or rel in tracked:
                    continue
                if rel in tracked_dirs and entry.is_dir(follow_symlinks=False):
                    pending.append(rel)
                    continue
                dest = self.root / rel
                if dest.exists() or dest.is_symlink():
                    continue  # never replace what the working folder already holds
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.rename(entry.path, dest)
                os.symlink(dest, entry.path)
                moved.append(rel)
        left = {rel: entry for rel, entry in build_manifest(snapshot).items() if rel not in set(moved)}
        write_manifest(snapshot, left)
        return sorted(moved)

    def generated(self, name: str) -> Path:
        """Where Dockmaster writes one of its own files (labels, overrides) in the working folder."""
        if not name.startswith(GENERATED_PREFIX):
            raise ValueError(f"{name} is not a generated file name")
        return self.root / name


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


class _Tree:
    """File operations under a root that never follow a symlink (directory descriptors, O_NOFOLLOW)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fds: dict[str, int] = {}

    def __enter__(self) -> _Tree:
        self._fds[""] = os.open(self.root, _DIR_FLAGS)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _dir(self, rel: str, *, create: bool) -> int | None:
        """A descriptor of folder `rel`; None when it does not exist (and `create` is off)."""
        if rel in self._fds:
            return self._fds[rel]
        parent = self._dir(_parent(rel), create=create)
        if parent is None:
            return None
        name = rel.rsplit("/", 1)[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        self._fds[rel] = fd
        return fd

    def _lstat(self, rel: str) -> os.stat_result | None:
        """lstat of `rel` through real folders only; None when missing or reached through a non-folder."""
        try:
            parent = self._dir(_parent(rel), create=False)
        except (NotADirectoryError, OSError):
            return None
        if parent is None:
            return None
        try:
            return os.lstat(rel.rsplit("/", 1)[-1], dir_fd=parent)
        except FileNotFoundError:
            return None

    def conflict(self, rel: str, entry: str, old: Manifest) -> str | None:
        """Why `rel` cannot be written, or None."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            info = self._lstat(prefix)
            if info is None or stat.S_ISDIR(info.st_mode):
                if info is None:
                    break
                continue
            if prefix in old:
                continue  # a tracked file becomes a folder: it is removed first
            return f"{prefix} is a {'symlink' if stat.S_ISLNK(info.st_mode) else 'file'}, not a folder"
        info = self._lstat(rel)
        if info is None:
            return None
        if stat.S_ISDIR(info.st_mode):
            return f"{rel} is a folder (the revision has a file there)"
        if rel in old or self._matches(rel, entry, info):
            return None
        return f"{rel} exists and is not tracked"

    def _matches(self, rel: str, entry: str, info: os.stat_result) -> bool:
        """True when `rel` already holds exactly `entry` (content and executable bit, or link target)."""
        parent = self._dir(_parent(rel), create=False)
        name = rel.rsplit("/", 1)[-1]
        if parent is None:
            return False
        if stat.S_ISLNK(info.st_mode):
            return entry == f"link:{os.readlink(name, dir_fd=parent)}"
        if not stat.S_ISREG(info.st_mode) or entry.startswith("link:"):
            return False
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=parent)
        with os.fdopen(fd, "rb") as handle:
            return _file_entry(handle.read(), info.st_mode) == entry

    def remove(self, rel: str) -> bool:
        """Remove a formerly tracked file or symlink; a folder that took its place is left alone."""
        info = self._lstat(rel)
        if info is None or stat.S_ISDIR(info.st_mode):
            return False
        parent = self._dir(_parent(rel), create=False)
        assert parent is not None
        os.unlink(rel.rsplit("/", 1)[-1], dir_fd=parent)
        return True

    def write(self, rel: str, entry: str, source: Path) -> bool:
        """Write `rel` from the snapshot unless it already holds `entry`; True when written."""
        info = self._lstat(rel)
        if info is not None and self._matches(rel, entry, info):
            return False
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            # A formerly tracked file where the new revision needs a folder was removed above; a
            # leftover (it changed into a folder) is the only case left, and conflict() refused it.
            self._dir("/".join(parts[:depth]), create=True)
        parent = self._dir(_parent(rel), create=True)
        assert parent is not None
        name = parts[-1]
        tmp = f".dm-{secrets.token_hex(6)}.tmp"
        if entry.startswith("link:"):
            os.symlink(entry[len("link:"):], tmp, dir_fd=parent)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(source.read_bytes())
                os.fchmod(handle.fileno(), 0o755 if entry.startswith("x:") else 0o644)
        try:
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise
        return True

    def prune_empty(self, folders: set[str], *, keep: set[str]) -> None:
        """Remove folders that held removed tracked files and are empty now (deepest first)."""
        candidates: set[str] = set()
        for folder in folders:
            while folder and folder not in keep:
                candidates.add(folder)
                folder = _parent(folder)
        for folder in sorted(candidates, key=lambda f: f.count("/"), reverse=True):
            parent = self._dir(_parent(folder), create=False)
            if parent is None:
                continue
            fd = self._fds.pop(folder, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.rmdir(folder.rsplit("/", 1)[-1], dir_fd=parent)
