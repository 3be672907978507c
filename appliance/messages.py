"""Notification texts: each addon describes its own events' messages in a `notify` platform module.

An addon's `addons/<domain>/notify.py` holds `MESSAGES` (event type → builder) and optionally
`SUCCESS` (event types that are good news) and `SEVERITY` (a notification severity that differs from
the event's own). The loader registers them; the notify addon reads the catalogue from here and never
needs to know another addon's events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# A builder returns (title, body, repeat phrase); the repeat phrase takes the count ("{n}").
Builder = Callable[[Any], tuple[str, str, str]]
MAX_LISTED = 10

_MESSAGES: dict[str, Builder] = {}
_SUCCESS: set[str] = set()
_SEVERITY: dict[str, str] = {}


def register(messages: Mapping[str, Builder], *, success: frozenset[str] = frozenset(),
             severity: Mapping[str, str] | None = None) -> None:
    """Add an addon's message builders (called by the loader for each `notify` platform)."""
    _MESSAGES.update(messages)
    _SUCCESS.update(success)
    _SEVERITY.update(severity or {})


def catalogue() -> dict[str, Builder]:
    """Every event type that has a message of its own."""
    return dict(_MESSAGES)


def is_success(event_type: str) -> bool:
    """True for good news (a green icon on most services)."""
    return event_type in _SUCCESS


def severity_override(event_type: str) -> str | None:
    """The notification severity of an event type where it differs from the event's own."""
    return _SEVERITY.get(event_type)


def short(revision: str | None) -> str:
    """A revision as its first seven characters."""
    return (revision or "?")[:7]


def listed(items: list[str]) -> str:
    """Items joined with commas, the first ten only."""
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def plural(count: int, word: str) -> str:
    """`1 update`, `2 updates`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _config_error(e: Any) -> tuple[str, str, str]:
    lines = "\n".join(f"- {issue}" for issue in e.issues[:MAX_LISTED])
    more = len(e.issues) - MAX_LISTED
    if more > 0:
        lines += f"\n- … and {more} more"
    return "Configuration has problems", lines or "See the dashboard.", "config problems were reported {n} more times"


def _addon_failed(e: Any) -> tuple[str, str, str]:
    return f"Addon {e.domain} is disabled", str(e.error), f"addon {e.domain} failed {{n}} more times"


register({"config_error": _config_error, "addon_failed": _addon_failed})
