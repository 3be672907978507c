"""apt on Debian and Ubuntu: update, simulate-and-parse, held packages, lock waiting, dpkg repair."""

from __future__ import annotations

import re

from ..ssh import CommandFailed, CommandResult
from . import LockHeld, PackageManager, RebootInfo, Upgrade

# `Inst dm-demo [1] (2 localhost [all])`; a new install has no `[old]` part.
_INST = re.compile(
    r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]+)\] )?\((?P<new>\S+) (?P<src>.*?)(?: \[(?P<arch>[^\]]+)\])?\)"
)
_LOCK = re.compile(r"Could not get lock (?P<path>\S+?)\.? It is held by process (?P<pid>\d+)(?: \((?P<proc>[^)]+)\))?")
_LOCK_MARKERS = ("Unable to acquire the dpkg frontend lock", "Could not get lock", "Unable to lock directory")
_INTERRUPTED = "dpkg was interrupted"

ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a", "APT_LISTCHANGES_FRONTEND": "none"}
# Keep the local version of a changed conffile unless the package default is unambiguous: never prompts.
CONFFILE_OPTIONS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


def parse_simulation(text: str) -> list[Upgrade]:
    """Upgrades from `apt-get -s upgrade|dist-upgrade` output (its `Inst` lines)."""
    found: list[Upgrade] = []
    for line in text.splitlines():
        match = _INST.match(line.strip())
        if match:
            found.append(Upgrade(match["name"], match["old"], match["new"], match["arch"], match["src"] or None))
    return found


def parse_held(text: str) -> list[str]:
    """Package names from `apt-mark showhold`."""
    return [line.strip() for line in text.splitlines() if line.strip() and " " not in line.strip()]


def lock_holder(text: str) -> str | None:
    """A phrase naming the lock and its holder when apt gave up waiting for a lock, else None."""
    if not any(marker in text for marker in _LOCK_MARKERS):
        return None
    match = _LOCK.search(text)
    if match:
        holder = f"process {match['pid']}" + (f" ({match['proc']})" if match["proc"] else "")
        return f"{match['path']} is held by {holder}"
    return "the dpkg lock is held by another process"


def needs_repair(text: str) -> bool:
    """True when apt reports an interrupted dpkg run (`dpkg --configure -a` fixes it)."""
    return _INTERRUPTED in text


def error_summary(text: str) -> str:
    """The lines of apt/dpkg output that say what failed (`dpkg: error processing ...`, `E: ...`)."""
    picked = [
        line.strip() for line in text.splitlines()
        if line.startswith(("E: ", "dpkg: error")) or "returned error exit status" in line
    ]
    return " / ".join(picked[-4:]) or " / ".join(text.strip().splitlines()[-3:])


def parse_reboot_pkgs(text: str) -> list[str]:
    """Unique package names from /var/run/reboot-required.pkgs."""
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


class AptManager(PackageManager):
    """apt-get with non-interactive frontends, safe conffile answers and `DPkg::Lock::Timeout`."""

    name = "apt"

    def _lock_options(self) -> list[str]:
        return ["-o", f"DPkg::Lock::Timeout={int(self.lock_timeout)}"]

    def _raise_for_lock(self, result: CommandResult) -> None:
        holder = lock_holder(result.output)
        if result.exit_status != 0 and holder:
            raise LockHeld(f"{self.conn.name}: package lock still held after {self.lock_timeout:.0f}s: {holder}")

    async def async_refresh(self) -> None:
        """`apt-get update` (waits for the lists lock up to the lock timeout)."""
        result = await self.conn.async_run(
            ["apt-get", "-q", *self._lock_options(), "update"], become=True, env=ENV
        )
        self._raise_for_lock(result)
        if result.exit_status != 0:
            raise CommandFailed(f"{self.conn.name}: apt-get update failed: {result.stderr.strip()[-300:]}", result)

    async def async_list_upgrades(self) -> list[Upgrade]:
        """Simulate the configured upgrade mode and parse its `Inst` lines."""
        result = await self.conn.async_run(["apt-get", "-s", "-q", self.upgrade_mode], env=ENV)
        if result.exit_status != 0:
            raise CommandFailed(
                f"{self.conn.name}: apt-get -s {self.upgrade_mode} failed: {result.output.strip()[-300:]}", result
            )
        return parse_simulation(result.stdout)

    async def async_held(self) -> list[str]:
        """`apt-mark showhold`."""
        result = await self.conn.async_run(["apt-mark", "showhold"])
        return parse_held(result.stdout) if result.exit_status == 0 else []

    async def async_repair(self) -> str | None:
        """Run `dpkg --configure -a` when a previous dpkg run was interrupted."""
        audit = await self.conn.async_run(["dpkg", "--audit"], become=True)
        if not audit.stdout.strip():
            return None
        result = await self.conn.async_run(["dpkg", "--configure", "-a"], become=True, env=ENV)
        self._raise_for_lock(result)
        if result.exit_status != 0:
            raise CommandFailed(
                f"{self.conn.name}: dpkg --configure -a could not repair the interrupted dpkg run: "
                f"{result.output.strip()[-300:]}", result,
            )
        return "repaired an interrupted dpkg run with dpkg --configure -a"

    async def async_upgrade(self) -> str:
        """`apt-get -y <upgrade|dist-upgrade>` without prompts; a held lock raises LockHeld."""
        argv = ["apt-get", "-y", "-q", *self._lock_options(), *CONFFILE_OPTIONS, self.upgrade_mode]
        result = await self.conn.async_run(argv, become=True, env=ENV)
        self._raise_for_lock(result)
        if result.exit_status != 0:
            hint = " (dpkg was interrupted; the next run repairs it)" if needs_repair(result.output) else ""
            summary = error_summary(result.output)
            raise CommandFailed(f"{self.conn.name}: apt-get {self.upgrade_mode} failed{hint}: {summary}", result)
        return result.output

    async def async_reboot_required(self) -> RebootInfo:
        """/var/run/reboot-required(.pkgs), else a newer installed kernel."""
        exists = await self.conn.async_run(["test", "-e", "/var/run/reboot-required"])
        if exists.exit_status == 0:
            pkgs = await self.conn.async_run(["cat", "/var/run/reboot-required.pkgs"])
            packages = parse_reboot_pkgs(pkgs.stdout) if pkgs.exit_status == 0 else []
            return RebootInfo(True, "/var/run/reboot-required exists", packages)
        return await super().async_reboot_required()
