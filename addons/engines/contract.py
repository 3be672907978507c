"""What other addons may use of the engines addon: engine health, file delivery to an engine's host, events.

Docker clients and compose variables come from the core (`app.engines`); this addon adds the remote
engines to it, watches every engine's health and copies stack files to engines reached over SSH.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Protocol

from appliance.datakeys import DataKey

from .events import EngineRecovered, EngineUnreachable

__all__ = ["ENGINES", "EngineFleet", "EngineRecovered", "EngineUnreachable"]


class EngineFleet(Protocol):
    """Engine health and file delivery."""

    def reachable(self, name: str) -> bool | None:
        """Whether the engine answered at its last check (None: not checked yet)."""

    def poke(self, name: str) -> None:
        """Check an engine soon: a run could not reach it."""

    async def async_deliver(self, name: str, local: Path, remote: PurePosixPath, files: list[str],
                            removed: list[str]) -> int:
        """Copy `files` (relative to `local`) to `remote` on the engine's host and delete `removed` there.

        Returns how many files were written. Raises for an engine that takes no files.
        """


ENGINES: DataKey[EngineFleet] = DataKey("engines")
