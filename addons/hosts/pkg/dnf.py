"""dnf and dnf5 on Fedora/RHEL: `check-update` (exit 100 = updates), `needs-restarting -r`."""

from __future__ import annotations

import re

from ..ssh import CommandFailed
from . import LockHeld, PackageManager, RebootInfo, Upgrade

# `kernel.x86_64   6.8.9-300.fc40   updates` (dnf4 and dnf5 print the same three columns).
_LINE = re.compile(r"^(?P<name>\S+)\.(?P<arch>[a-z0-9_]+|noarch)\s+(?P<new>\S+)\s+(?P<repo>\S+)\s*$")
_SECTION_END = ("Obsoleting Packages", "Security:", "Obsoleting packages")
_LOCK_MARKERS = (
    "Waiting for process with pid", "Failed to obtain the transaction lock", "is locked by another process",
)


def parse_check_update(text: str) -> list[Upgrade]:
    """Upgrades from `dnf check-update` / `dnf5 check-upgrade` output (stops at 'Obsoleting Packages')."""
    found: list[Upgrade] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith(_SECTION_END):
            break
        match = _LINE.match(line)
        if match:
            found.append(Upgrade(match["name"], None, match["new"], match["arch"], match["repo"]))
    return found


def parse_rpm_versions(text: str) -> dict[str, str]:
    """`name.arch version-release` lines from `rpm -q --qf` into a lookup."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            result[parts[0]] = parts[1]
    return result


class DnfManager(PackageManager):
    """dnf (or dnf5 through its dnf name) upgrades; reboot need from `needs-restarting -r`."""

    name = "dnf"

    async def async_refresh(self) -> None:
        """`dnf makecache`."""
        result = await self.conn.async_run(["dnf", "-q", "-y", "makecache"], become=True)
        if result.exit_status != 0:
            if any(m in result.output for m in _LOCK_MARKERS):
                raise LockHeld(f"{self.conn.name}: the dnf lock is held by another process")
            raise CommandFailed(f"{self.conn.name}: dnf makecache failed: {result.output.strip()[-300:]}", result)

    async def async_list_upgrades(self) -> list[Upgrade]:
        """`dnf check-update`: exit 100 means updates are listed, 0 none, anything else an error."""
        result = await self.conn.async_run(["dnf", "-q", "check-update"], become=True)
        if result.exit_status == 0:
            return []
        if result.exit_status != 100:
            raise CommandFailed(f"{self.conn.name}: dnf check-update failed: {result.output.strip()[-300:]}", result)
        upgrades = parse_check_update(result.stdout)
        if upgrades:
            names = [f"{u.name}.{u.arch}" for u in upgrades]
            rpm = await self.conn.async_run(
                ["rpm", "-q", "--qf", "%{NAME}.%{ARCH} %{VERSION}-%{RELEASE}\\n", *[u.name for u in upgrades]]
            )
            current = parse_rpm_versions(rpm.stdout)
            for upgrade, name in zip(upgrades, names, strict=True):
                upgrade.current = current.get(name)
        return upgrades

    async def async_upgrade(self) -> str:
        """`dnf -y upgrade`."""
        result = await self.conn.async_run(["dnf", "-y", "upgrade"], become=True)
        if result.exit_status != 0:
            if any(m in result.output for m in _LOCK_MARKERS):
                raise LockHeld(f"{self.conn.name}: the dnf lock stayed held by another process")
            raise CommandFailed(f"{self.conn.name}: dnf upgrade failed: {result.output.strip()[-300:]}", result)
        return result.output

    async def async_reboot_required(self) -> RebootInfo:
        """`needs-restarting -r` (dnf-utils; `dnf needs-restarting -r` on dnf5): exit 1 = reboot needed."""
        result = await self.conn.async_run(["dnf", "needs-restarting", "-r"], become=True)
        if result.exit_status == 1:
            packages = [
                line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("*")
                and len(line.split()) > 1
            ]
            return RebootInfo(True, "needs-restarting -r: reboot is required", packages)
        if result.exit_status == 0:
            return RebootInfo(False)
        return await super().async_reboot_required()
