"""Package managers on fleet hosts: detection, the shared interface and reboot-required checks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..ssh import HostError

if TYPE_CHECKING:
    from ..ssh import HostConnection


class LockHeld(HostError):
    """The package manager's lock stayed held past the lock timeout (the host is deferred)."""


@dataclass
class Upgrade:
    """One upgradable package: name, installed version and the version it would move to."""

    name: str
    current: str | None
    new: str
    arch: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@dataclass
class RebootInfo:
    """Whether a host needs a reboot, why, and which packages asked for it."""

    required: bool
    reason: str = ""
    packages: list[str] = field(default_factory=list)


_VERSION_PART = re.compile(r"(\d+|[a-zA-Z]+)")


def version_key(text: str) -> list[tuple[int, int | str]]:
    """A sort key comparing kernel versions naturally (6.1.0-21 < 6.1.0-110)."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in _VERSION_PART.findall(text)]


def kernel_outdated(running: str, installed: list[str]) -> bool:
    """True when a newer kernel than the running one is installed (needs a reboot)."""
    candidates = [k for k in installed if k.strip()]
    if not running or not candidates:
        return False
    newest = max(candidates, key=version_key)
    return version_key(newest) > version_key(running)


# Lists the running kernel and the kernels whose modules are installed; read-only.
KERNELS_SCRIPT = "uname -r; ls -1 /lib/modules /usr/lib/modules 2>/dev/null | grep -v ':$' | sort -u"


class PackageManager:
    """The interface every package manager implements over one host connection."""

    name = "none"

    def __init__(self, conn: HostConnection, *, upgrade_mode: str = "upgrade", lock_timeout: float = 60.0) -> None:
        """Bind the manager to a host connection and its settings."""
        self.conn = conn
        self.upgrade_mode = upgrade_mode
        self.lock_timeout = lock_timeout

    async def async_refresh(self) -> None:
        """Refresh the package indexes (apt-get update, dnf makecache ...)."""

    async def async_list_upgrades(self) -> list[Upgrade]:
        """The packages an upgrade would change."""
        raise NotImplementedError

    async def async_held(self) -> list[str]:
        """Packages held back from upgrades."""
        return []

    async def async_upgrade(self) -> str:
        """Apply the upgrades; returns the command output for the run log."""
        raise NotImplementedError

    async def async_repair(self) -> str | None:
        """Repair an interrupted package database when needed; returns what was done."""
        return None

    async def async_reboot_required(self) -> RebootInfo:
        """Whether the host needs a reboot: a newer kernel than the running one is installed."""
        result = await self.conn.async_run(["sh", "-c", KERNELS_SCRIPT])
        lines = result.stdout.split()
        if lines and kernel_outdated(lines[0], lines[1:]):
            newest = max(lines[1:], key=version_key)
            return RebootInfo(True, f"running kernel {lines[0]} is older than installed {newest}", ["kernel"])
        return RebootInfo(False)


# Prints the first package manager found; read-only and fixed (no config text goes into it).
DETECT_SCRIPT = (
    "for pm in apt-get dnf5 dnf yum apk pacman; do "
    "command -v $pm >/dev/null 2>&1 && { echo $pm; exit 0; }; done; exit 1"
)
_DETECTED = {"apt-get": "apt", "dnf5": "dnf", "dnf": "dnf", "yum": "dnf", "apk": "apk", "pacman": "pacman"}


async def async_detect(conn: HostConnection) -> str:
    """Find which package manager a host uses."""
    result = await conn.async_run(["sh", "-c", DETECT_SCRIPT])
    found = result.stdout.strip()
    if result.exit_status != 0 or found not in _DETECTED:
        raise HostError(f"{conn.name}: no supported package manager found (apt, dnf, apk, pacman)")
    return _DETECTED[found]


def manager_for(name: str, conn: HostConnection, **kwargs: Any) -> PackageManager:
    """The manager class for a package manager name."""
    from .apk import ApkManager
    from .apt import AptManager
    from .dnf import DnfManager
    from .pacman import PacmanManager

    classes: dict[str, type[PackageManager]] = {
        "apt": AptManager, "dnf": DnfManager, "apk": ApkManager, "pacman": PacmanManager,
    }
    return classes[name](conn, **kwargs)
