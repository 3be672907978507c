"""A notification target: its Apprise services, its filters, and the folding and quiet-hours gates."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from appliance.events import Event
from appliance.windows import MaintenanceWindow

from .messages import SEVERITY_RANK, Composed, Message, fold_digest, quiet_digest, severity_of
from .schema import expand_events

_LOGGER = logging.getLogger(__name__)


@dataclass
class Service:
    """One Apprise URL of a target, shown only in redacted form; `url` is None when Apprise refused it."""

    index: int
    redacted: str
    url: str | None = field(repr=False)
    error: str | None = None


@dataclass
class _Fold:
    """Repeats of one event key within the current fold period."""

    composed: Composed
    count: int = 0
    handle: asyncio.TimerHandle | None = None
    ends: float = 0.0  # wall-clock end of the period, so a restart continues it


@dataclass
class _Held:
    """A message held during quiet hours, with how often its key came up."""

    message: Message
    count: int = 1


@dataclass
class Target:
    """A named destination: filters decide what reaches it, gates decide when it is sent."""

    name: str
    conf: dict[str, Any]
    services: list[Service]
    send: Callable[[Target, Message], None]
    host_tags: Callable[[str], list[str]]
    quiet: MaintenanceWindow | None = None
    error: str | None = None
    queue: asyncio.Queue[Message] = field(init=False)
    folds: dict[str, _Fold] = field(default_factory=dict)
    held: dict[str, _Held] = field(default_factory=dict)
    # Called whenever held messages or fold counters change, so they can be persisted.
    changed: Callable[[Target], None] = field(default=lambda target: None, repr=False)
    _hold_handle: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        """Derive the event set, the severity floor and the bounded send queue."""
        self.types = expand_events(self.conf.get("events"))
        self.floor = SEVERITY_RANK[self.conf["min_severity"]]
        self.fold_period: timedelta = self.conf["fold"]
        self.queue = asyncio.Queue(self.conf["queue_size"])

    @property
    def enabled(self) -> bool:
        """True when at least one of its URLs could be loaded."""
        return any(service.url is not None for service in self.services)

    # --- filters ------------------------------------------------------------------------

    def accepts(self, event: Event) -> bool:
        """Whether the event passes the event list, min_severity and the stack/host/tag filters."""
        if event.type not in self.types or SEVERITY_RANK[severity_of(event.type)] < self.floor:
            return False
        stack = getattr(event, "stack", None)
        stacks: list[str] = self.conf["stacks"]
        if stack is not None and stacks and not any(fnmatchcase(stack, p) for p in stacks):
            return False
        host = getattr(event, "host", None)
        hosts: list[str] = self.conf["hosts"]
        tags: list[str] = self.conf["tags"]
        if host is not None and (hosts or tags):
            by_name = any(fnmatchcase(host, p) for p in hosts)
            by_tag = bool(set(tags) & set(self.host_tags(host)))
            if not (by_name or by_tag):
                return False
        return True

    # --- gates: quiet hours, then folding ------------------------------------------------

    def offer(self, composed: Composed) -> None:
        """Pass a message through quiet hours and folding; what survives goes to `send`."""
        message = composed.message
        if self._hold_if_quiet(message):
            return
        if self.fold_period.total_seconds() <= 0:
            self.send(self, message)
            return
        fold = self.folds.get(message.key)
        if fold is not None:
            fold.count += 1
            fold.composed = composed
            self.changed(self)
            return
        self.folds[message.key] = self._start_fold(composed)
        self.changed(self)
        self.send(self, message)

    def _start_fold(self, composed: Composed, delay: float | None = None) -> _Fold:
        period = self.fold_period.total_seconds()
        delay = period if delay is None else min(max(delay, 0.0), period)
        fold = _Fold(composed, ends=time.time() + delay)
        fold.handle = asyncio.get_running_loop().call_later(delay, self._fold_ended, composed.message.key)
        return fold

    def _fold_ended(self, key: str) -> None:
        fold = self.folds.pop(key, None)
        if fold is None:
            return
        self.changed(self)
        if fold.count == 0:
            return
        digest = fold_digest(fold.composed, fold.count, self.fold_period)
        # A key that keeps repeating stays folded: the next period starts with this digest.
        self.folds[key] = self._start_fold(fold.composed)
        if not self._hold_if_quiet(digest):
            self.send(self, digest)

    def _hold_if_quiet(self, message: Message) -> bool:
        if self.quiet is None or message.severity == "critical":
            return False
        now = datetime.now(self.quiet.tz)
        closes = self.quiet.closes_at(now)
        if closes is None:
            return False
        held = self.held.get(message.key)
        if held is None:
            self.held[message.key] = _Held(message)
        else:
            held.count += 1
            held.message = message
        self.changed(self)
        self._schedule_release(max(0.0, (closes - now).total_seconds()))
        return True

    def _schedule_release(self, delay: float) -> None:
        if self._hold_handle is None:
            self._hold_handle = asyncio.get_running_loop().call_later(delay, self.release_held)
            _LOGGER.debug("Target %s: quiet hours, holding messages for %.0fs", self.name, delay)

    def release_held(self) -> None:
        """Send what quiet hours held, as one digest."""
        self._hold_handle = None
        if not self.held:
            return
        items = [(held.message, held.count) for held in self.held.values()]
        self.held.clear()
        self.changed(self)
        quiet = self.conf.get("quiet_hours")
        self.send(self, quiet_digest(items, quiet["text"] if quiet else "now removed from the config"))

    # --- persistence: what is held or folded outlives a restart ---------------------------

    def snapshot(self) -> dict[str, Any]:
        """Held messages and folds in progress as plain data (times as Unix seconds)."""
        return {
            "held": [{"message": dataclasses.asdict(h.message), "count": h.count} for h in self.held.values()],
            "folds": [
                {"message": dataclasses.asdict(f.composed.message), "repeat": f.composed.repeat,
                 "count": f.count, "ends": f.ends}
                for f in self.folds.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a snapshot after a restart: folds continue, held messages wait for quiet hours to end."""
        now = time.time()
        for item in state.get("folds") or []:
            composed = Composed(Message(**item["message"]), item["repeat"])
            fold = self._start_fold(composed, delay=item["ends"] - now)
            fold.count = item["count"]
            self.folds[composed.message.key] = fold
        for item in state.get("held") or []:
            message = Message(**item["message"])
            self.held[message.key] = _Held(message, item["count"])
        if self.held:
            closes = self.quiet.closes_at() if self.quiet is not None else None
            # Quiet hours that ended (or were removed) while the appliance was down: the digest goes now.
            self._schedule_release(0.0 if closes is None else max(0.0, closes.timestamp() - now))

    def close(self) -> None:
        """Cancel the timers (shutdown); the state stays as persisted for the next start."""
        for fold in self.folds.values():
            if fold.handle is not None:
                fold.handle.cancel()
        self.folds.clear()
        if self._hold_handle is not None:
            self._hold_handle.cancel()
            self._hold_handle = None

    # --- display ------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The target for the API and the UI: URLs redacted, filters and state."""
        conf = self.conf
        quiet = conf.get("quiet_hours")
        return {
            "name": self.name,
            "enabled": self.enabled,
            "error": self.error,
            "urls": [
                {"url": s.redacted, "ok": s.url is not None, "error": s.error} for s in self.services
            ],
            "events": conf.get("events") or ["(default)"],
            "event_types": sorted(self.types),
            "min_severity": conf["min_severity"],
            "stacks": conf["stacks"], "hosts": conf["hosts"], "tags": conf["tags"],
            "quiet_hours": None if not quiet else {
                "text": quiet["text"], "open": bool(self.quiet and self.quiet.is_open()),
                "held": sum(h.count for h in self.held.values()),
            },
            "fold": self.fold_period.total_seconds(),
            "timeout": conf["timeout"].total_seconds(),
            "retries": conf["retries"],
            "queued": self.queue.qsize(),
        }
