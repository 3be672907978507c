"""Backup archives of the appliance's own state: database, config, secrets, keys, stack working-folder lists.

One `.tar.gz` holds `manifest.json`, `config/…` (files of the config folder), `data/…` (the online
SQLite backup and the small state files of the data dir) and `stacks/<name>.json` (what each stack's
working folder holds, never the data in it). Every function blocks on file I/O: run it in an executor.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.errors import Conflict, DockmasterError, NotFound

FORMAT = 1
DB_NAME = "dockmaster.db"
NAME_RE = re.compile(r"^dockmaster-[a-z0-9_-]+-\d{8}T\d{6}Z(-\d+)?\.tar\.gz$")
# Small state files of the data dir worth keeping: generated deploy keys and known_hosts, the
# self-signed certificate, registry logins. Checkouts, snapshots and working folders are rebuilt.
DATA_FOLDERS = ("keys", "tls", "docker")
# Folders of the config dir taken whole (keys the user placed there, custom addons).
CONFIG_FOLDERS = ("keys", "custom_addons", "tls")
CONFIG_SUFFIXES = (".yaml", ".yml")
TRACKED = "tracked.json"  # the stacks addon's list of the files a revision wrote into a working folder
MAX_FILE = 64 * 1024 * 1024


class RestoreRefused(DockmasterError):
    """The target is not empty, or the archive is not a Dockmaster backup."""

    status = 409
    code = "restore_refused"


@dataclass(frozen=True)
class BackupFile:
    """One archive in the backup folder."""

    name: str
    size: int
    created: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"name": self.name, "size": self.size, "created": self.created}


def _rel_inside(path: Path, root: Path) -> Path | None:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return None


def _walk(folder: Path) -> list[Path]:
    """Regular files under `folder`, symlinks not followed."""
    found = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(current) / name
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def config_files(config_path: Path, referenced: list[str], skip: list[Path]) -> tuple[list[Path], list[str]]:
    """Files of the config folder to keep, and referenced files outside it that are not kept."""
    root = config_path.parent
    chosen: dict[Path, None] = {}
    for entry in sorted(root.iterdir()):
        if entry.is_file() and not entry.is_symlink() and entry.suffix in CONFIG_SUFFIXES:
            chosen[entry] = None
    for folder in CONFIG_FOLDERS:
        if (root / folder).is_dir():
            for path in _walk(root / folder):
                chosen[path] = None
    outside = []
    for name in referenced:
        path = Path(name) if Path(name).is_absolute() else root / name
        if not path.is_file():
            continue
        if _rel_inside(path, root) is None:
            outside.append(str(path))
        else:
            chosen[path] = None
    kept = [p for p in chosen if not any(_rel_inside(p, s) is not None for s in skip)]
    return kept, outside


def _db_copy(db: Path, target: Path) -> None:
    """An online backup of the live database (consistent even while the daemon writes)."""
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    dest = sqlite3.connect(target)
    try:
        with dest:
            source.backup(dest)
    finally:
        dest.close()
        source.close()


def stack_lists(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Per stack: the files its current revision wrote into the working folder, and what else is there."""
    result: dict[str, dict[str, Any]] = {}
    root = data_dir / "stacks"
    if not root.is_dir():
        return result
    for base in sorted(p for p in root.iterdir() if p.is_dir()):
        tracked: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            tracked = json.loads((base / TRACKED).read_text(encoding="utf-8"))
        work = base / "work"
        top = {rel.split("/", 1)[0] for rel in tracked}
        others = sorted(p.name + ("/" if p.is_dir() else "") for p in work.iterdir()
                        if p.name not in top) if work.is_dir() else []
        result[base.name] = {"work": str(work), "tracked": tracked, "untracked": others}
    return result


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def make_backup(config_path: Path, data_dir: Path, to_dir: Path, *, name: str,
                referenced: list[str] | None = None) -> BackupFile:
    """Write one archive into `to_dir` (mode 0600) and return it."""
    config_path, to_dir = Path(config_path).resolve(), Path(to_dir)
    to_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "dockmaster"
    final = to_dir / f"dockmaster-{slug}-{stamp}.tar.gz"
    number = 2
    while final.exists():
        final, number = to_dir / f"dockmaster-{slug}-{stamp}-{number}.tar.gz", number + 1
    files, outside = config_files(config_path, referenced or [], [data_dir, to_dir])
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": __version__, "name": name, "created": time.time(),
        "config_file": config_path.name, "data_dir": str(data_dir), "config": [], "data": [],
        "not_included": outside, "stacks": [],
    }
    fd, tmp_name = tempfile.mkstemp(prefix=".backup-", suffix=".tmp", dir=to_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tarfile.open(tmp, "w:gz") as tar, tempfile.TemporaryDirectory(prefix=".db-", dir=to_dir) as scratch:
            for path in files:
                rel = path.resolve().relative_to(config_path.parent).as_posix()
                tar.add(path, f"config/{rel}", recursive=False)
                manifest["config"].append(rel)
            db = data_dir / DB_NAME
            if db.exists():
                copy = Path(scratch) / DB_NAME
                _db_copy(db, copy)
                tar.add(copy, f"data/{DB_NAME}")
                manifest["data"].append(DB_NAME)
            for folder in DATA_FOLDERS:
                if (data_dir / folder).is_dir():
                    for path in _walk(data_dir / folder):
                        if path.stat().st_size <= MAX_FILE:
                            rel = path.relative_to(data_dir).as_posix()
                            tar.add(path, f"data/{rel}", recursive=False)
                            manifest["data"].append(rel)
            for stack, listing in stack_lists(data_dir).items():
                _add_bytes(tar, f"stacks/{stack}.json", json.dumps(listing, indent=1, sort_keys=True).encode())
                manifest["stacks"].append(stack)
            _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stat = final.stat()
    return BackupFile(final.name, stat.st_size, stat.st_mtime)


def list_backups(to_dir: Path) -> list[BackupFile]:
    """The archives in `to_dir`, newest first."""
    if not Path(to_dir).is_dir():
        return []
    found = []
    for path in Path(to_dir).iterdir():
        if NAME_RE.match(path.name) and path.is_file():
            stat = path.stat()
            found.append(BackupFile(path.name, stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda b: (b.created, b.name), reverse=True)


def prune_backups(to_dir: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` archives; returns the names removed."""
    removed = []
    for old in list_backups(to_dir)[keep:]:
        (Path(to_dir) / old.name).unlink(missing_ok=True)
        removed.append(old.name)
    return removed


def backup_path(to_dir: Path, name: str) -> Path:
    """The path of one archive by name (only names Dockmaster makes; no path tricks)."""
    if not NAME_RE.match(name) or not (Path(to_dir) / name).is_file():
        raise NotFound(f"no backup named '{name}'")
    return Path(to_dir) / name


def _member_target(member: tarfile.TarInfo) -> tuple[str, str] | None:
    """('config'|'data', relative path) for a file the restore writes; None for what it skips."""
    parts = Path(member.name).parts
    if not member.isfile() or len(parts) < 2 or parts[0] not in ("config", "data"):
        return None
    if member.name.startswith("/") or any(p in ("..", "") for p in parts):
        raise RestoreRefused(f"unsafe path in the archive: {member.name}")
    return parts[0], "/".join(parts[1:])


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest of an archive; RestoreRefused when it is not a Dockmaster backup."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            handle = tar.extractfile("manifest.json")
            data = json.loads(handle.read()) if handle else None
    except (OSError, KeyError, tarfile.TarError, ValueError) as err:
        raise RestoreRefused(f"{archive} is not a Dockmaster backup: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RestoreRefused(f"{archive} is not a Dockmaster backup of format {FORMAT}")
    return data


def restore_backup(archive: Path, config_path: Path, data_dir_of: Any) -> dict[str, Any]:
    """Unpack an archive into an empty config folder and the data dir its config names.

    `data_dir_of(config_path)` reads the restored config and answers where its data dir is. Refuses
    when the config file, secrets.yaml or the database already exist: a restore never merges.
    """
    manifest = read_manifest(archive)
    config_path = Path(config_path)
    root = config_path.parent
    if config_path.exists() or (root / "secrets.yaml").exists():
        raise RestoreRefused(f"{root} already holds a configuration; restore into an empty folder")
    if manifest.get("config_file") != config_path.name:
        raise Conflict(f"the backup's config file is {manifest.get('config_file')}, not {config_path.name}")
    written: list[str] = []
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, t) for m in tar.getmembers() if (t := _member_target(m)) is not None]
        for member, (area, rel) in members:
            if area == "config":
                _extract(tar, member, root / rel)
                written.append(f"config/{rel}")
        data_dir = Path(data_dir_of(config_path))
        if (data_dir / DB_NAME).exists():
            raise RestoreRefused(f"{data_dir / DB_NAME} already exists; restore into an empty data dir")
        for member, (area, rel) in members:
            if area == "data":
                _extract(tar, member, data_dir / rel)
                written.append(f"data/{rel}")
    return {"config_dir": str(root), "data_dir": str(data_dir), "files": written,
            "created": manifest.get("created"), "version": manifest.get("version")}


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    source = tar.extractfile(member)
    assert source is not None
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, member.mode & 0o700 or 0o600)
    with os.fdopen(fd, "wb") as handle:
        while chunk := source.read(1024 * 1024):
            handle.write(chunk)
