"""Constants of the notify addon."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "notify"
