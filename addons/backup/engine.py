"""The backup engine: where archives go, how many stay, and each backup made as a run."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from appliance.core import Appliance
from appliance.datakeys import DataKey
from appliance.services import ServiceCall

from . import archive
from .contract import BackupCreated, BackupFailed, LastBackup

_LOGGER = logging.getLogger(__name__)

# Config keys whose value names a file worth keeping (private keys, known_hosts, age identities, TLS).
FILE_KEYS = frozenset({"ssh_key", "known_hosts", "sops_age_key_file", "cert", "key", "ca"})


def default_dir(config_path: Path) -> Path:
    """Where backups go without `backup.to`: `backups/` next to config.yaml."""
    return config_path.parent / "backups"


def resolve_dir(config_path: Path, to: Path | str | None) -> Path:
    """`backup.to` (relative to the config folder) or the default."""
    if not to:
        return default_dir(config_path)
    path = Path(to)
    return path if path.is_absolute() else config_path.parent / path


def referenced_files(node: Any) -> list[str]:
    """Every file path the validated config names under a key-file key."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FILE_KEYS and isinstance(value, str | Path):
                found.append(str(value))
            else:
                found.extend(referenced_files(value))
    elif isinstance(node, list | tuple):
        for item in node:
            found.extend(referenced_files(item))
    return found


class BackupEngine:
    """Makes, lists and prunes archives for one appliance."""

    def __init__(self, app: Appliance, conf: dict[str, Any]) -> None:
        """Read `backup.to` and `backup.keep`."""
        self.app = app
        self.conf = conf
        self.keep: int = conf["keep"]
        self.dir = resolve_dir(app.config_path, conf.get("to"))
        self._last: LastBackup | None = None  # read from the folder on first use, then kept up to date

    async def async_last(self) -> LastBackup:
        """The newest archive and how the latest attempt went (the folder is read once, in an executor)."""
        if self._last is None:
            backups = await self.app.async_run_blocking(self.list)
            newest = backups[0] if backups else None
            self._last = LastBackup(name=newest.name if newest else None, time=newest.created if newest else None,
                                    size=newest.size if newest else None, ok=True, error=None)
        return self._last

    def list(self) -> list[archive.BackupFile]:
        """Archives in the backup folder, newest first (blocks: stat)."""
        return archive.list_backups(self.dir)

    def path(self, name: str) -> Path:
        """One archive by name (raises NotFound)."""
        return archive.backup_path(self.dir, name)

    async def async_scheduled(self) -> None:
        """The cron job: one backup, then prune."""
        await self.async_create(actor=None, trigger="schedule")

    async def async_create(self, *, actor: str | None, trigger: str = "manual",
                           source: str | None = None) -> dict[str, Any]:
        """Make one archive as a run, keep the newest `keep`; returns the archive and the run id."""
        app = self.app
        reason = f"backup requested by {actor}" if actor else "scheduled backup"
        before = await self.async_last()
        run = None
        try:
            async with app.runs.track("backup", app.name, trigger=trigger, reason=reason, actor=actor) as run:
                made = await app.async_run_blocking(self._make)
                run.log(f"wrote {self.dir / made.name} ({made.size} bytes)")
                removed = await app.async_run_blocking(archive.prune_backups, self.dir, self.keep)
                for name in removed:
                    run.log(f"removed {name} (keep {self.keep})")
                app.runs.update(run, details={"backup": made.name, "size": made.size, "removed": removed})
        except Exception as err:
            error = app.redactor(str(err) or type(err).__name__)
            self._last = dataclasses.replace(before, ok=False, error=error)
            app.bus.async_fire(BackupFailed(error=error, run_id=run.id if run else None))
            raise
        self._last = LastBackup(name=made.name, time=made.created, size=made.size, ok=True, error=None)
        app.bus.async_fire(BackupCreated(backup=made.name, size=made.size, run_id=run.id))
        if actor:
            app.store.audit(actor, "backup", made.name, source=source, details={"size": made.size, "removed": removed})
        _LOGGER.info("Backup %s written (%d bytes)", made.name, made.size)
        return {"backup": made.as_dict(), "run_id": run.id, "removed": removed}

    async def async_create_service(self, call: ServiceCall) -> dict[str, Any]:
        """The `backup.create` service."""
        return await self.async_create(actor=call.actor, trigger=call.trigger, source=call.source)

    def _make(self) -> archive.BackupFile:
        return archive.make_backup(self.app.config_path, self.app.data_dir, self.dir, name=self.app.name,
                                   referenced=referenced_files(self.app.conf))


ENGINE_KEY: DataKey[BackupEngine] = DataKey("backup")
