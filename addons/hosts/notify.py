"""Notification messages of the hosts addon's events."""

from __future__ import annotations

from typing import Any

from appliance.messages import listed, plural


def _updates(e: Any) -> tuple[str, str, str]:
    body = f"Pending: {listed(e.packages)}." if e.packages else "Updates are pending."
    return (f"{plural(e.count, 'update')} available on {e.host}", body,
            f"updates on {e.host} were reported {{n}} more times")


def _host_failed(e: Any) -> tuple[str, str, str]:
    return f"Update of {e.host} failed", str(e.error), f"update of {e.host} failed {{n}} more times"


def _host_updated(e: Any) -> tuple[str, str, str]:
    return (f"{e.host} updated", f"{plural(e.upgraded, 'package')} upgraded.",
            f"{e.host} was updated {{n}} more times")


def _reboot(e: Any) -> tuple[str, str, str]:
    body = (f"Updated packages that need it: {listed(e.packages)}." if e.packages
            else "An update needs a reboot to take effect.")
    return f"{e.host} needs a reboot", body, f"{e.host} asked for a reboot {{n}} more times"


def _rebooted(e: Any) -> tuple[str, str, str]:
    return f"{e.host} rebooted", "The host is back with a new boot id.", f"{e.host} rebooted {{n}} more times"


MESSAGES = {
    "updates_available": _updates,
    "host_update_failed": _host_failed,
    "host_update_succeeded": _host_updated,
    "reboot_required": _reboot,
    "host_rebooted": _rebooted,
}
SUCCESS = frozenset({"host_update_succeeded", "host_rebooted"})
# Pending updates are something to act on, so they reach a target with the default `min_severity: warning`.
SEVERITY = {"updates_available": "warning"}
