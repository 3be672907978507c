"""Messages from bus events: each addon's `notify` platform gives the text; this adds links, severity and digests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from appliance import messages as platform
from appliance.events import Event, event_types
from appliance.messages import plural

SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

# Apprise notify types by severity (Apprise itself runs in `child`).
_APPRISE_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}
# Never worth a message: the live log stream and our own test request.
UNNOTIFIABLE = frozenset({"run_log", "notification_test"})


@dataclass(frozen=True)
class Message:
    """One notification ready to send: what a person reads, plus routing facts."""

    title: str
    body: str
    severity: str
    event: str
    key: str
    link: str | None = None
    success: bool = False

    @property
    def notify_type(self) -> str:
        """The Apprise notification type (info, success, warning or failure)."""
        if self.success and self.severity == "info":
            return "success"
        return _APPRISE_TYPES[self.severity]


def severity_of(event_type: str) -> str:
    """The notification severity of an event type."""
    override = platform.severity_override(event_type)
    if override:
        return override
    cls = event_types().get(event_type)
    severity = cls.severity if cls is not None else "info"
    return severity if severity in SEVERITY_RANK else "info"


def max_severity(severities: Iterable[str]) -> str:
    """The highest of some severities (info when there are none)."""
    return max(severities, key=lambda s: SEVERITY_RANK[s], default="info")


def _generic(e: Event) -> tuple[str, str, str]:
    data = {k: v for k, v in dataclasses.asdict(e).items() if k != "time" and v not in (None, "", [])}
    subject = data.get("target") or data.get("stack") or data.get("host")
    title = e.type.replace("_", " ").capitalize() + (f": {subject}" if subject else "")
    body = "\n".join(f"- {k}: {v}" for k, v in data.items())
    return title, body, f"{e.type.replace('_', ' ')} happened {{n}} more times"


@dataclass(frozen=True)
class Composed:
    """A message plus the phrase its fold digest uses."""

    message: Message
    repeat: str


def compose(event: Event, *, link: Callable[[str], str], redact: Callable[[str], str]) -> Composed:
    """Build the message for an event; `link` makes run links absolute, `redact` hides secrets."""
    builder = platform.catalogue().get(event.type, _generic)
    title, body, repeat = builder(event)
    run_id = getattr(event, "run_id", None)
    url = link(f"/runs/{run_id}") if run_id else None
    if url:
        body += f"\n\n[Open run #{run_id}]({url})"
    message = Message(
        title=redact(title), body=redact(body), severity=severity_of(event.type), event=event.type,
        key=event.key, link=url, success=platform.is_success(event.type),
    )
    return Composed(message, redact(repeat))


def fold_digest(composed: Composed, count: int, period: timedelta) -> Message:
    """The digest sent when a fold period ends: '<repeat phrase>' with the count of repeats."""
    last = composed.message
    phrase = composed.repeat.replace("{n}", str(count))
    body = f"Within {format_period(period)} after the first message. The latest:\n\n{last.body}"
    return dataclasses.replace(last, title=phrase[:1].upper() + phrase[1:], body=body)


def quiet_digest(held: list[tuple[Message, int]], window: str) -> Message:
    """One digest of the messages held during quiet hours."""
    total = sum(count for _, count in held)
    lines = [f"- **{msg.title}**" + (f" ({count} times)" if count > 1 else "") for msg, count in held]
    links = [msg.link for msg, _ in held if msg.link]
    body = "\n".join(lines[:50])
    if len(lines) > 50:
        body += f"\n- … and {len(lines) - 50} more"
    return Message(
        title=f"{plural(total, 'notification')} held during quiet hours",
        body=f"Quiet hours ({window}) are over. While they were on:\n\n{body}",
        severity=max_severity(msg.severity for msg, _ in held),
        event="quiet_digest", key="quiet_digest", link=links[-1] if links else None,
    )


def make_test_message(app_name: str, target: str, actor: str) -> Message:
    """The message `POST /api/v1/notify/test` sends."""
    return Message(
        title="Dockmaster test notification",
        body=f"Target **{target}** of {app_name} works. Sent on request of {actor}.",
        severity="info", event="test", key=f"test:{target}", success=True,
    )


def format_period(period: timedelta) -> str:
    """A period in words a person reads: 45s, 10m, 2h."""
    seconds = period.total_seconds()
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
