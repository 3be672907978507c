"""The message catalogue: a title, a short markdown body and a severity for each bus event."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from appliance.events import Event, event_types

SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

# Notification severity where it differs from the event's own: pending updates are something to act
# on, so they reach a target with the default `min_severity: warning`.
SEVERITY_OVERRIDES = {"updates_available": "warning"}

# Good news gets Apprise's "success" type (a green icon on most services).
_SUCCESS_TYPES = frozenset({"deploy_succeeded", "host_update_succeeded", "host_rebooted"})
# Apprise notify types by severity (Apprise itself runs in `child`).
_APPRISE_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}
# Never worth a message: the live log stream and our own test request.
UNNOTIFIABLE = frozenset({"run_log", "notification_test"})
_MAX_LISTED = 10


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
    if event_type in SEVERITY_OVERRIDES:
        return SEVERITY_OVERRIDES[event_type]
    cls = event_types().get(event_type)
    severity = cls.severity if cls is not None else "info"
    return severity if severity in SEVERITY_RANK else "info"


def max_severity(severities: Iterable[str]) -> str:
    """The highest of some severities (info when there are none)."""
    return max(severities, key=lambda s: SEVERITY_RANK[s], default="info")


def short(revision: str | None) -> str:
    """A revision as its first seven characters."""
    return (revision or "?")[:7]


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# Each builder returns (title, body, repeat phrase); the repeat phrase takes the count ("{n}").
Builder = Callable[[Any], tuple[str, str, str]]


def _deploy_failed(e: Any) -> tuple[str, str, str]:
    return (f"Deploy of {e.stack} failed", f"Revision `{short(e.revision)}` did not deploy: {e.error}",
            f"deploy of {e.stack} failed {{n}} more times")


def _deploy_succeeded(e: Any) -> tuple[str, str, str]:
    body = f"Revision `{short(e.revision)}` is running and healthy."
    if e.reason:
        body += f" Why: {e.reason}"
    return f"{e.stack} deployed", body, f"{e.stack} was deployed {{n}} more times"


def _policy_violation(e: Any) -> tuple[str, str, str]:
    lines = "\n".join(f"- {v}" for v in e.violations[:_MAX_LISTED])
    more = len(e.violations) - _MAX_LISTED
    if more > 0:
        lines += f"\n- … and {more} more"
    return (f"Deploy of {e.stack} refused by its policy",
            f"Revision `{short(e.revision)}` was refused before any container was touched (policy {e.policy}); "
            f"the running stack is unchanged.\n\n{lines}",
            f"{e.stack} was refused {{n}} more times")


def _rollback_succeeded(e: Any) -> tuple[str, str, str]:
    if e.bad_revision:
        body = (f"Revision `{short(e.bad_revision)}` failed, so {e.stack} runs the last good revision "
                f"`{short(e.revision)}` again. The bad revision will not be retried automatically.")
    else:
        body = f"{e.stack} runs revision `{short(e.revision)}` again."
    return (f"{e.stack} rolled back to {short(e.revision)}", body,
            f"{e.stack} was rolled back {{n}} more times")


def _rollback_failed(e: Any) -> tuple[str, str, str]:
    return (f"Rollback of {e.stack} failed",
            f"Could not return to revision `{short(e.revision)}`: {e.error}. The stack needs attention.",
            f"rollback of {e.stack} failed {{n}} more times")


def _drift(e: Any) -> tuple[str, str, str]:
    action = "Dockmaster is redeploying it." if e.healing else "Auto-deploy is off: deploy it to heal the drift."
    return f"Drift on {e.stack}", f"{e.details} {action}", f"drift on {e.stack} was seen {{n}} more times"


def _updates(e: Any) -> tuple[str, str, str]:
    body = f"Pending: {_listed(e.packages)}." if e.packages else "Updates are pending."
    return (f"{_plural(e.count, 'update')} available on {e.host}", body,
            f"updates on {e.host} were reported {{n}} more times")


def _host_failed(e: Any) -> tuple[str, str, str]:
    return f"Update of {e.host} failed", str(e.error), f"update of {e.host} failed {{n}} more times"


def _host_updated(e: Any) -> tuple[str, str, str]:
    return (f"{e.host} updated", f"{_plural(e.upgraded, 'package')} upgraded.",
            f"{e.host} was updated {{n}} more times")


def _reboot(e: Any) -> tuple[str, str, str]:
    body = (f"Updated packages that need it: {_listed(e.packages)}." if e.packages
            else "An update needs a reboot to take effect.")
    return f"{e.host} needs a reboot", body, f"{e.host} asked for a reboot {{n}} more times"


def _rebooted(e: Any) -> tuple[str, str, str]:
    return f"{e.host} rebooted", "The host is back with a new boot id.", f"{e.host} rebooted {{n}} more times"


def _config_error(e: Any) -> tuple[str, str, str]:
    lines = "\n".join(f"- {issue}" for issue in e.issues[:_MAX_LISTED])
    more = len(e.issues) - _MAX_LISTED
    if more > 0:
        lines += f"\n- … and {more} more"
    return "Configuration has problems", lines or "See the dashboard.", "config problems were reported {n} more times"


def _addon_failed(e: Any) -> tuple[str, str, str]:
    return f"Addon {e.domain} is disabled", str(e.error), f"addon {e.domain} failed {{n}} more times"


def _low_disk(e: Any) -> tuple[str, str, str]:
    return (f"Low disk space on {e.target}", f"{e.used_percent:.0f}% used (threshold {e.threshold:.0f}%).",
            f"low disk space on {e.target} was reported {{n}} more times")


def _image_update(e: Any) -> tuple[str, str, str]:
    return (f"New image for {e.stack}", f"`{e.image}` has a newer version in its registry.",
            f"a new image for {e.stack} was reported {{n}} more times")


CATALOGUE: dict[str, Builder] = {
    "deploy_failed": _deploy_failed,
    "deploy_succeeded": _deploy_succeeded,
    "policy_violation": _policy_violation,
    "rollback_succeeded": _rollback_succeeded,
    "rollback_failed": _rollback_failed,
    "drift_detected": _drift,
    "updates_available": _updates,
    "host_update_failed": _host_failed,
    "host_update_succeeded": _host_updated,
    "reboot_required": _reboot,
    "host_rebooted": _rebooted,
    "config_error": _config_error,
    "addon_failed": _addon_failed,
    "low_disk": _low_disk,
    "image_update_available": _image_update,
}


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
    builder = CATALOGUE.get(event.type, _generic)
    title, body, repeat = builder(event)
    run_id = getattr(event, "run_id", None)
    url = link(f"/runs/{run_id}") if run_id else None
    if url:
        body += f"\n\n[Open run #{run_id}]({url})"
    message = Message(
        title=redact(title), body=redact(body), severity=severity_of(event.type), event=event.type,
        key=event.key, link=url, success=event.type in _SUCCESS_TYPES,
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
        title=f"{_plural(total, 'notification')} held during quiet hours",
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
