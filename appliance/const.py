"""Constants shared by the core and the addons."""

from __future__ import annotations

from typing import Final, Literal

CORE_DOMAINS: Final = ("dockmaster", "http", "auth")

Scope = Literal["read", "deploy", "admin"]
SCOPES: Final[tuple[str, ...]] = ("read", "deploy", "admin")
# A scope grants itself and every scope listed before it.
SCOPE_RANK: Final = {scope: rank for rank, scope in enumerate(SCOPES)}

TRIGGERS: Final = ("poll", "webhook", "manual", "schedule", "drift", "api", "startup", "mqtt")
RUN_STATUSES: Final = (
    "queued", "running", "succeeded", "failed", "cancelled", "interrupted", "skipped",
)
FINAL_STATUSES: Final = frozenset({"succeeded", "failed", "cancelled", "interrupted", "skipped"})

DEFAULT_PORT: Final = 8099
ADDON_SETUP_TIMEOUT: Final = 30.0
RUN_LOG_CAP: Final = 256 * 1024
