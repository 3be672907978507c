"""pacman on Arch: `checkupdates` (pacman-contrib, safe copy of the sync db) or `pacman -Qu`."""

from __future__ import annotations

import re

from ..ssh import CommandFailed
from . import LockHeld, PackageManager, Upgrade

# `linux 6.8.9.arch1-1 -> 6.9.1.arch1-1`, optionally followed by ` [ignored]`.
_LINE = re.compile(r"^(?P<name>\S+) (?P<old>\S+) -> (?P<new>\S+)(?P<ignored> \[ignored\])?$")
_LOCK_MARKER = "unable to lock database"


def parse_updates(text: str) -> list[Upgrade]:
    """Upgrades from `checkupdates` or `pacman -Qu` (ignored packages are left out)."""
    found = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match and not match["ignored"]:
            found.append(Upgrade(match["name"], match["old"], match["new"]))
    return found


def parse_ignored(text: str) -> list[str]:
    """Packages `pacman -Qu` marks `[ignored]` (IgnorePkg: the pacman form of a hold)."""
    return [m["name"] for line in text.splitlines() if (m := _LINE.match(line.strip())) and m["ignored"]]


class PacmanManager(PackageManager):
    """pacman; `checkupdates` when installed so the live sync db is not touched by a check."""

    name = "pacman"

    async def async_list_upgrades(self) -> list[Upgrade]:
        """`checkupdates` (exit 2 = none) or, without pacman-contrib, `pacman -Sy` + `pacman -Qu`."""
        result = await self.conn.async_run(["checkupdates"])
        if result.exit_status == 2:
            return []
        if result.exit_status == 127:
            sync = await self.conn.async_run(["pacman", "-Sy"], become=True)
            if _LOCK_MARKER in sync.output:
                raise LockHeld(f"{self.conn.name}: the pacman database is locked (db.lck)")
            result = await self.conn.async_run(["pacman", "-Qu"])
            if result.exit_status == 1 and not result.stdout.strip():
                return []
        if result.exit_status != 0:
            raise CommandFailed(f"{self.conn.name}: pacman update check failed: {result.output.strip()[-300:]}", result)
        return parse_updates(result.stdout)

    async def async_held(self) -> list[str]:
        """Ignored packages as listed by `pacman -Qu`."""
        result = await self.conn.async_run(["pacman", "-Qu"])
        return parse_ignored(result.stdout)

    async def async_upgrade(self) -> str:
        """`pacman -Syu --noconfirm`."""
        result = await self.conn.async_run(["pacman", "-Syu", "--noconfirm"], become=True)
        if _LOCK_MARKER in result.output:
            raise LockHeld(f"{self.conn.name}: the pacman database is locked (db.lck)")
        if result.exit_status != 0:
            raise CommandFailed(f"{self.conn.name}: pacman -Syu failed: {result.output.strip()[-300:]}", result)
        return result.output
