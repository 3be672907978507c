"""Retention: runs, audit rows, events and delivery logs pruned by age and count in the store's writer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from . import cv

if TYPE_CHECKING:
    from .store import Store

_LOGGER = logging.getLogger(__name__)

CATEGORIES = ("runs", "audit", "events", "deliveries")
RETENTION_SCHEMA = vol.Schema(
    {
        vol.Optional("runs", default="90d"): cv.positive_duration,
        vol.Optional("audit", default="365d"): cv.positive_duration,
        vol.Optional("events", default="30d"): cv.positive_duration,
        vol.Optional("deliveries", default="30d"): cv.positive_duration,
        vol.Optional("max_runs", default=50_000): cv.positive_int,
        vol.Optional("max_audit", default=500_000): cv.positive_int,
        vol.Optional("max_events", default=200_000): cv.positive_int,
        vol.Optional("max_deliveries", default=20_000): cv.positive_int,
        vol.Optional("prune", default="41 * * * *"): cv.cron,
    }
)
# Rows deleted per write transaction: short transactions let batched writes in between.
CHUNK = 2000


@dataclass(frozen=True)
class PruneRule:
    """One table under retention: its category, the column that dates a row, and rows never pruned."""

    category: str
    table: str
    time_column: str = "time"
    keep_where: str = ""  # SQL condition for rows that must stay (e.g. runs still in flight)


CORE_RULES = (
    PruneRule("runs", "runs", "finished", "status IN ('queued', 'running') OR finished IS NULL"),
    PruneRule("audit", "audit"),
    PruneRule("events", "events"),
)


class Retention:
    """Prunes every registered table by age and row count; addons register their delivery logs."""

    def __init__(self, store: Store, conf: dict[str, Any] | None = None) -> None:
        """Read the `dockmaster.retention` block (defaults when it is absent)."""
        self.store = store
        self.conf: dict[str, Any] = RETENTION_SCHEMA(dict(conf or {}))
        self.rules: list[PruneRule] = list(CORE_RULES)
        self.last: dict[str, Any] | None = None

    def register(self, rule: PruneRule) -> None:
        """Put an addon's table under a category's retention (usually `deliveries`)."""
        if rule.category not in CATEGORIES:
            raise ValueError(f"unknown retention category {rule.category!r}")
        self.rules.append(rule)

    async def async_prune(self) -> dict[str, int]:
        """Delete what is too old or past the count, chunk by chunk in the writer; returns rows per table."""
        started = time.monotonic()
        now = time.time()
        removed: dict[str, int] = {}
        for rule in self.rules:
            max_age = self.conf[rule.category].total_seconds()
            max_rows = self.conf[f"max_{rule.category}"]
            removed[rule.table] = await self.store.async_prune(
                rule.table, rule.time_column, now - max_age, max_rows, rule.keep_where, CHUNK
            )
        size = await self.store.async_size()
        self.last = {"time": now, "removed": removed, "seconds": round(time.monotonic() - started, 3),
                     "database_bytes": size}
        if any(removed.values()):
            _LOGGER.info("Retention removed %s", ", ".join(f"{n} from {t}" for t, n in removed.items() if n))
        return removed
