"""Events of the notify addon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class NotificationTest(Event):
    """A test notification was requested."""

    type: ClassVar[str] = "notification_test"
    key_field: ClassVar[str | None] = "target"
    actor: str
    target: str | None = None
