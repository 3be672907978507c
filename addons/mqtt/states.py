"""State payloads: what each device's retained state and update topics say, from the other addons' read models.

Home Assistant validates an update entity's JSON state strictly (only its own keys; a null in a
string key rejects the whole message), so update payloads leave out what is not known and carry
nothing else; lists for attributes go in the device's state topic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from addons.backup.contract import LastBackup
from addons.hosts.contract import HostFleet
from addons.stacks.contract import StackOverview

# Home Assistant cuts an update entity's release summary at 255 characters.
SUMMARY_LIMIT = 255
SUMMARY_LINES = 20
ITEM_LIMIT = 100  # one commit subject or package line, before it is cut
LIST_LIMIT = 50  # entries of a list attribute
# Home Assistant renders the summary as Markdown; repo authors are untrusted, so their text is inert.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else None


def _short(rev: str | None) -> str | None:
    return rev[:12] if rev else None


def _clip(text: str, limit: int) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def summary(items: Sequence[str], total: int | None = None) -> str | None:
    """A Markdown list of `items` (newest first) within Home Assistant's limits, ending `… and N more`.

    At most SUMMARY_LINES lines and SUMMARY_LIMIT characters; `total` counts items not passed in.
    """
    total = len(items) if total is None else max(total, len(items))

    def text(lines: list[str]) -> str:
        more = total - len(lines)
        tail = f"… and {more} more" if more else ""
        return "\n\n".join(p for p in ("\n".join(lines), tail) if p)

    lines: list[str] = []
    for item in items[:SUMMARY_LINES]:
        line = "- " + _MARKDOWN.sub(r"\\\1", _clip(item, ITEM_LIMIT))
        if len(text([*lines, line])) > SUMMARY_LIMIT:
            break
        lines.append(line)
    return text(lines) or None


def _present(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if value is not None}


def stack_states(view: StackOverview, link: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device state and the update entity's state of one stack."""
    behind = view.latest_revision != view.deployed_revision
    subjects = list(view.pending_subjects) if behind else []
    pending = max(view.pending_total, len(subjects)) if behind else 0
    state = {
        "health": view.health, "problem": "OFF" if view.health in ("healthy", "unknown") else "ON",
        "auto_deploy": view.auto_deploy, "deployed_revision": view.deployed_revision,
        "last_result": view.last_run_status or "never", "last_kind": view.last_run_kind,
        "last_time": _iso(view.last_run_time), "last_error": view.last_run_error,
        "commits": [_clip(s, ITEM_LIMIT) for s in subjects],
        "pending_commits": pending,
    }
    if behind and not subjects and view.latest_subject:  # a catalogue that lists no commits: the newest one
        subjects = [view.latest_subject]
    update = _present({
        "installed_version": _short(view.deployed_revision), "latest_version": _short(view.latest_revision),
        "title": view.name, "release_summary": summary(subjects, pending or None),
        "release_url": link, "in_progress": view.last_run_status in ("queued", "running"),
    })
    return state, update


def host_states(fleet: HostFleet, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device state and the update entity's state of one host."""
    status = fleet.status(name)
    packages = [_package(p) for p in status.pending]
    state = {
        "state": status.state, "reason": status.reason, "error": status.error, "pending": len(packages),
        "reboot_required": bool(status.reboot_required), "packages": packages[:LIST_LIMIT],
    }
    update = _present({
        "installed_version": "current",
        "latest_version": f"+{len(packages)} packages" if packages else "current",
        "title": f"{name} packages", "release_summary": summary(packages),
        "in_progress": status.state in ("updating", "rebooting", "verifying"),
    })
    return state, update


def _package(entry: Any) -> str:
    """`name current → new` of one pending package (the name alone when the versions are unknown)."""
    if not isinstance(entry, dict):
        return str(entry)
    versions = " → ".join(str(entry[k]) for k in ("current", "new") if entry.get(k))
    return f"{entry.get('name', '')} {versions}".strip()


def backup_state(last: LastBackup) -> dict[str, Any]:
    """The appliance state's `backup` part: the newest archive and how the latest attempt went."""
    return {"time": _iso(last.time), "name": last.name, "size": last.size,
            "result": "failed" if not last.ok else ("succeeded" if last.name else "never"), "error": last.error}


def dumps(payload: dict[str, Any]) -> str:
    """Compact, stable JSON (equal states give equal payloads, so unchanged states are not re-sent)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
