"""Events of the engines addon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class EngineUnreachable(Event):
    """A Docker engine stopped answering (fired once per outage)."""

    type: ClassVar[str] = "engine_unreachable"
    severity: ClassVar[str] = "critical"
    key_field: ClassVar[str | None] = "engine"
    engine: str
    error: str


@dataclass(kw_only=True)
class EngineRecovered(Event):
    """A Docker engine answers again after an outage."""

    type: ClassVar[str] = "engine_recovered"
    severity: ClassVar[str] = "warning"  # the all-clear reaches whoever got the outage
    key_field: ClassVar[str | None] = "engine"
    engine: str
    down_for: float = 0.0
