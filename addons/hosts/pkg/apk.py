"""apk on Alpine: `apk version -l '<'` to list, `apk upgrade --simulate` for a dry-run."""

from __future__ import annotations

import re

from ..ssh import CommandFailed
from . import LockHeld, PackageManager, Upgrade

# `musl-1.2.4-r2                < 1.2.4-r3`: the installed name-version, then the available version.
_VERSION_LINE = re.compile(r"^(?P<name>\S+?)-(?P<old>\d[^-\s]*-r\d+)\s+<\s+(?P<new>\S+)")
# `(1/3) Upgrading musl (1.2.4-r2 -> 1.2.4-r3)`
_SIMULATE_LINE = re.compile(r"^\(\d+/\d+\) Upgrading (?P<name>\S+) \((?P<old>\S+) -> (?P<new>\S+)\)")
_LOCK_MARKERS = ("Unable to lock database", "unable to obtain lock")


def parse_version_list(text: str) -> list[Upgrade]:
    """Upgrades from `apk version -l '<'`."""
    found = []
    for line in text.splitlines():
        match = _VERSION_LINE.match(line.strip())
        if match:
            found.append(Upgrade(match["name"], match["old"], match["new"]))
    return found


def parse_simulation(text: str) -> list[Upgrade]:
    """Upgrades from `apk upgrade --simulate`."""
    found = []
    for line in text.splitlines():
        match = _SIMULATE_LINE.match(line.strip())
        if match:
            found.append(Upgrade(match["name"], match["old"], match["new"]))
    return found


class ApkManager(PackageManager):
    """Alpine's apk."""

    name = "apk"

    def _check_lock(self, output: str) -> None:
        if any(m in output for m in _LOCK_MARKERS):
            raise LockHeld(f"{self.conn.name}: the apk database is locked by another process")

    async def async_refresh(self) -> None:
        """`apk update`."""
        result = await self.conn.async_run(["apk", "update"], become=True)
        self._check_lock(result.output)
        if result.exit_status != 0:
            raise CommandFailed(f"{self.conn.name}: apk update failed: {result.output.strip()[-300:]}", result)

    async def async_list_upgrades(self) -> list[Upgrade]:
        """`apk version -l '<'`."""
        result = await self.conn.async_run(["apk", "version", "-l", "<"])
        if result.exit_status != 0:
            raise CommandFailed(f"{self.conn.name}: apk version failed: {result.output.strip()[-300:]}", result)
        return parse_version_list(result.stdout)

    async def async_upgrade(self) -> str:
        """`apk upgrade --no-interactive`."""
        result = await self.conn.async_run(["apk", "upgrade", "--no-interactive"], become=True)
        self._check_lock(result.output)
        if result.exit_status != 0:
            raise CommandFailed(f"{self.conn.name}: apk upgrade failed: {result.output.strip()[-300:]}", result)
        return result.output
