"""Copying a stack's tracked files to an SSH engine's host over SFTP, without following any symlink there.

A container on that host may have left a symlink in the working folder (`./data` -> `/etc`): every
folder on the way is checked with lstat and every file is written to a temporary name in its own
folder and renamed over the target, so nothing outside the working folder is ever written.
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from appliance.errors import DockmasterError


class DeliveryError(DockmasterError):
    """A file could not be placed on the engine's host; nothing was changed outside the working folder."""

    status = 502
    code = "delivery_failed"


async def _lstat(sftp: Any, path: PurePosixPath) -> Any:
    import asyncssh

    try:
        return await sftp.lstat(str(path))
    except asyncssh.SFTPNoSuchFile:
        return None


async def _ensure_folder(sftp: Any, root: PurePosixPath, rel: PurePosixPath, known: set[PurePosixPath],
                         *, create: bool = True) -> bool:
    """Make `root/rel` a chain of real folders (the configured root itself is trusted); False if missing.

    A symlink or a file on the way under `root` is refused: a container may have put it there.
    """
    current = root
    for part in rel.parts:
        current = current / part
        if current in known:
            continue
        attrs = await _lstat(sftp, current)
        if attrs is None:
            if not create:
                return False
            await sftp.mkdir(str(current))
        elif stat.S_ISLNK(attrs.permissions or 0):
            raise DeliveryError(f"{current} on the engine's host is a symlink; Dockmaster does not follow it")
        elif not stat.S_ISDIR(attrs.permissions or 0):
            raise DeliveryError(f"{current} on the engine's host is not a folder")
        known.add(current)
    return True


def _relative(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise DeliveryError(f"refusing a path outside the working folder: {rel}")
    return path


async def async_deliver(sftp: Any, local: Path, remote: PurePosixPath, files: list[str], removed: list[str]) -> int:
    """Write each tracked file under `remote`, delete files the previous revision tracked; returns files written."""
    await sftp.makedirs(str(remote), exist_ok=True)
    modes = await asyncio.to_thread(lambda: {rel: (local / rel).stat().st_mode & 0o777 for rel in files})
    known: set[PurePosixPath] = set()
    written = 0
    for rel in sorted(files):
        path = _relative(rel)
        target = remote / path
        await _ensure_folder(sftp, remote, path.parent, known)
        attrs = await _lstat(sftp, target)
        if attrs is not None and not stat.S_ISREG(attrs.permissions or 0):
            raise DeliveryError(f"{target} on the engine's host is in the way (not a regular file); "
                                "move it, then deploy again")
        temporary = target.parent / f".{target.name}.dockmaster-new"
        await sftp.put(str(local / rel), str(temporary), preserve=False)
        await sftp.chmod(str(temporary), modes[rel])
        await sftp.posix_rename(str(temporary), str(target))
        written += 1
    for rel in sorted(removed):
        path = _relative(rel)
        if not await _ensure_folder(sftp, remote, path.parent, known, create=False):
            continue
        attrs = await _lstat(sftp, remote / path)
        if attrs is not None and stat.S_ISREG(attrs.permissions or 0):
            await sftp.remove(str(remote / path))
    return written
