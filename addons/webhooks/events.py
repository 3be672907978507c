"""Events of the webhooks addon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class WebhookReceived(Event):
    """A webhook delivery was processed."""

    type: ClassVar[str] = "webhook_received"
    key_field: ClassVar[str | None] = "repo"
    repo: str
    provider: str
    event: str
    outcome: str
    delivery_id: str | None = None
    branch: str | None = None
