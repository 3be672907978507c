"""Typed events: one dataclass per event type, all fired on the one bus."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

_EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(kw_only=True)
class Event:
    """Base of every event; `type` names it on the wire, `severity` guides notifications."""

    type: ClassVar[str] = "event"
    severity: ClassVar[str] = "info"
    # The field naming what the event is about (a stack, a host…): repeats of one type about one
    # target fold together in notifications. None: every event of the type folds together.
    key_field: ClassVar[str | None] = None
    time: float = field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register each concrete event type by name."""
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            _EVENT_TYPES[cls.type] = cls

    def as_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-friendly dict including its type and severity."""
        data = dataclasses.asdict(self)
        data["type"] = self.type
        data["severity"] = self.severity
        return data

    @property
    def key(self) -> str:
        """A stable key for folding repeats: the type plus the value of its declared `key_field`."""
        target = getattr(self, self.key_field, None) if self.key_field else None
        return f"{self.type}:{target}" if target else self.type


def event_types() -> dict[str, type[Event]]:
    """Return every registered event type by name."""
    return dict(_EVENT_TYPES)


# --- core ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ApplianceStarted(Event):
    """The appliance finished setting up its addons."""

    type: ClassVar[str] = "appliance_started"
    version: str
    addons: list[str]


@dataclass(kw_only=True)
class AddonFailed(Event):
    """An addon could not be set up and is disabled."""

    type: ClassVar[str] = "addon_failed"
    severity: ClassVar[str] = "critical"
    domain: str
    error: str


@dataclass(kw_only=True)
class ConfigInvalid(Event):
    """The configuration has problems."""

    type: ClassVar[str] = "config_error"
    severity: ClassVar[str] = "critical"
    issues: list[str]


@dataclass(kw_only=True)
class RunStarted(Event):
    """A run (unit of work) began."""

    type: ClassVar[str] = "run_started"
    key_field: ClassVar[str | None] = "target"
    run_id: int
    kind: str
    target: str
    trigger: str
    reason: str


@dataclass(kw_only=True)
class RunFinished(Event):
    """A run reached a final status."""

    type: ClassVar[str] = "run_finished"
    key_field: ClassVar[str | None] = "target"
    run_id: int
    kind: str
    target: str
    status: str
    reason: str
    error: str | None = None


@dataclass(kw_only=True)
class RunLog(Event):
    """Lines appended to a running run's log (live view only; not stored as events)."""

    type: ClassVar[str] = "run_log"
    run_id: int
    lines: list[str]
