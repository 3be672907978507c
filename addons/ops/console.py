"""The console's periodic work: low-disk and reboot checks, scheduled image checks and auto-updates."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import Conflict

from .host import DiskWatch
from .registry import OperationRegistry
from .selfimage import SelfImage
from .updates import UpdateChecker

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:ops"


@dataclass
class Console:
    """The ops addon's state: its config, the registry, the update checker and the disk watch."""

    app: Appliance
    conf: dict[str, Any]
    registry: OperationRegistry
    checker: UpdateChecker
    disk: DiskWatch
    self_image: SelfImage
    auto_pending: set[str] = field(default_factory=set)

    async def async_disk_tick(self) -> None:
        """Check free space (fires `low_disk`) and the host's reboot flag."""
        await self.disk.async_check()
        await self.disk.async_check_reboot(Path(self.conf["reboot_required_file"]))

    async def async_image_tick(self) -> None:
        """The scheduled image check, run as an operation so it is recorded like any other."""
        await self.registry.async_run("images_check", None, {}, actor=SYSTEM_ACTOR, trigger="schedule")

    async def async_after_check(self, results: dict[str, dict[str, Any]]) -> None:
        """With `auto_update`, queue one window-bound `stack_update` per stack that has an update."""
        if not self.conf["auto_update"]:
            return
        for name, status in sorted(results.items()):
            if not status["update_available"] or name in self.auto_pending:
                continue
            try:
                outcome = await self.registry.async_run(
                    "stack_update", name, {}, actor=f"{SYSTEM_ACTOR}:auto-update", trigger="schedule", wait=False
                )
            except Conflict:
                continue
            _LOGGER.info("Auto-update of stack %s queued as run %s", name, outcome.run_id)
            self.auto_pending.add(name)
            if outcome.task is not None:
                outcome.task.add_done_callback(functools.partial(self._auto_done, name))

    def _auto_done(self, stack: str, _task: asyncio.Task[Any]) -> None:
        self.auto_pending.discard(stack)
