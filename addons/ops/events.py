"""Events of the operations console."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class OperationFinished(Event):
    """An allowlisted operation ran."""

    type: ClassVar[str] = "operation_finished"
    key_field: ClassVar[str | None] = "target"
    operation: str
    target: str
    actor: str
    outcome: str


@dataclass(kw_only=True)
class LowDisk(Event):
    """A watched filesystem is over its usage threshold."""

    type: ClassVar[str] = "low_disk"
    key_field: ClassVar[str | None] = "target"
    severity: ClassVar[str] = "warning"
    target: str
    used_percent: float
    threshold: float


@dataclass(kw_only=True)
class ImageUpdateAvailable(Event):
    """A registry has a newer image for a tag a stack uses."""

    type: ClassVar[str] = "image_update_available"
    key_field: ClassVar[str | None] = "stack"
    stack: str
    image: str
    local_digest: str | None = None
    remote_digest: str | None = None
