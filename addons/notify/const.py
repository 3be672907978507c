"""Constants of the notify addon."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from appliance.datakeys import DataKey

if TYPE_CHECKING:
    from .engine import NotifyEngine

DOMAIN: Final = "notify"
ENGINE_KEY: DataKey[NotifyEngine] = DataKey("notify")
