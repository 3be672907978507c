"""Signals from the appliance host: disk space, the reboot-required flag, journal slices, low disk."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from addons.hosts.contract import RebootRequired
from appliance.errors import Unavailable
from appliance.subprocesses import async_spawn

from .containers import cap_line, system_df
from .events import LowDisk

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
JOURNAL_TIMEOUT = 20.0
JOURNAL_OUTPUT_CAP = 2 * 1024 * 1024


def disk_usage(path: Path) -> dict[str, Any] | None:
    """Total, used and free bytes of the filesystem holding `path`, or None when it is not visible; blocks."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    percent = round(100.0 * usage.used / usage.total, 1) if usage.total else 0.0
    return {"path": str(path), "total": usage.total, "used": usage.used, "free": usage.free,
            "used_percent": percent}


def reboot_required(flag: Path) -> dict[str, Any]:
    """Whether the host's `reboot-required` flag exists, with the packages that asked for it; blocks."""
    required = flag.exists()
    packages: list[str] = []
    pkgs = flag.with_name(flag.name + ".pkgs")
    if required and pkgs.is_file():
        text = pkgs.read_text(encoding="utf-8", errors="replace")[:65536]
        packages = sorted({line.strip() for line in text.splitlines() if line.strip()})
    return {"required": required, "packages": packages, "flag": str(flag)}


async def async_journal(journal_dir: Path | None, unit: str, lines: int) -> list[str]:
    """A slice of an allowlisted unit's journal from the mounted journal dir (argv, never a shell)."""
    if journal_dir is None:
        raise Unavailable("no journal is mounted (set ops.journal_dir)")
    if not await asyncio.to_thread(journal_dir.is_dir):
        raise Unavailable(f"journal dir {journal_dir} is not mounted")
    argv = ["journalctl", "-D", str(journal_dir), "-u", unit, "-n", str(lines), "--no-pager", "-o", "short-iso"]
    try:
        proc = await async_spawn(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise Unavailable("journalctl is not installed") from None
    try:
        async with asyncio.timeout(JOURNAL_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"journalctl exited {proc.returncode}: {err.decode(errors='replace').strip()[:500]}")
    text = out[:JOURNAL_OUTPUT_CAP].decode("utf-8", "replace")
    return [cap_line(line) for line in text.splitlines()]


class DiskWatch:
    """Fires `low_disk` when the data dir or the Docker root crosses the threshold (once per crossing)."""

    def __init__(self, app: Appliance, threshold: float) -> None:
        """Watch the appliance's data dir and the engine's root dir."""
        self.app = app
        self.threshold = threshold
        self.over: set[str] = set()
        self.reboot_seen = False
        self.last: dict[str, Any] = {}

    def _measure(self) -> dict[str, Any]:
        found: dict[str, Any] = {"data_dir": disk_usage(self.app.data_dir)}
        try:
            root = self.app.docker().info().get("DockerRootDir")
        except Exception as err:  # the engine may be down; the data dir still counts
            _LOGGER.debug("Cannot read the Docker root dir: %s", err)
            root = None
        # The root dir is only measurable when it is visible here (same host or mounted in).
        found["docker_root"] = disk_usage(Path(root)) if root else None
        return found

    async def async_check(self) -> dict[str, Any]:
        """Measure both filesystems and fire `low_disk` for each newly over the threshold."""
        found = await self.app.async_run_blocking(self._measure)
        for name, usage in found.items():
            if usage is None:
                continue
            if usage["used_percent"] >= self.threshold:
                if name not in self.over:
                    self.over.add(name)
                    _LOGGER.warning("Low disk on %s (%s): %.1f%% used", name, usage["path"], usage["used_percent"])
                    self.app.bus.async_fire(LowDisk(target=f"{name}:{usage['path']}",
                                                    used_percent=usage["used_percent"], threshold=self.threshold))
            else:
                self.over.discard(name)
        self.last = found
        return found

    async def async_check_reboot(self, flag: Path) -> None:
        """Fire `reboot_required` for the appliance host once when its flag appears."""
        state = await self.app.async_run_blocking(reboot_required, flag)
        if state["required"] and not self.reboot_seen:
            self.app.bus.async_fire(RebootRequired(host="appliance", packages=state["packages"]))
        self.reboot_seen = state["required"]


def engine_usage(app: Appliance) -> dict[str, Any]:
    """Docker disk usage plus free space of the data dir and the Docker root; blocks."""
    df = system_df(app.docker())
    root = df.get("docker_root_dir")
    return {
        "docker": df,
        "data_dir": disk_usage(app.data_dir),
        "docker_root": disk_usage(Path(root)) if root else None,
    }
