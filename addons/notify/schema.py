"""The `notify:` config schema: targets, event names and groups, filters and quiet hours."""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import Any

import voluptuous as vol

from appliance import cv
from appliance.events import event_types
from appliance.messages import catalogue

from .messages import SEVERITIES, SEVERITY_RANK, UNNOTIFIABLE, severity_of

# Friendly names for sets of event types; a group and an event type can be mixed in `events`.
# `all` stands for every event with a message of its own (each addon's `notify` platform).
EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "all": (),
    "deploys": ("deploy_succeeded", "deploy_failed", "policy_violation"),
    "rollback": ("rollback_succeeded", "rollback_failed"),
    "drift": ("drift_detected",),
    "host_failed": ("host_update_failed",),
    "hosts": ("updates_available", "host_update_succeeded", "host_update_failed", "reboot_required",
              "host_rebooted"),
    "updates": ("updates_available", "image_update_available"),
    "errors": ("config_error", "addon_failed"),
    "disk": ("low_disk",),
    "engines": ("engine_unreachable", "engine_recovered"),
    "backups": ("backup_created", "backup_failed"),
}


def default_events() -> tuple[str, ...]:
    """Sent when a target has no `events` list: the whole catalogue, then cut by `min_severity`."""
    return tuple(catalogue())

_CLOCK_RANGE_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def event_names() -> list[str]:
    """Every name `events` accepts: registered event types and the groups."""
    types = [name for name in event_types() if name not in UNNOTIFIABLE]
    return sorted({*types, *EVENT_GROUPS})


def event_name(value: Any) -> str:
    """An event type name or a group name, with a 'did you mean' hint when unknown."""
    text = cv.string(value).strip()
    known = event_names()
    if text in known:
        return text
    hint = difflib.get_close_matches(text, known, n=1, cutoff=0.6)
    message = f"unknown event '{text}'"
    message += f", did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(known)})"
    raise vol.Invalid(message)


def expand_events(names: list[str] | None) -> frozenset[str]:
    """The event types a list of names and groups stands for (the default list when None)."""
    result: set[str] = set()
    for name in default_events() if names is None else names:
        result.update(default_events() if name == "all" else EVENT_GROUPS.get(name, (name,)))
    return frozenset(result)


def quiet_hours(value: Any) -> dict[str, Any]:
    """Quiet hours as '22:00-07:00' (every day) or a `{cron, duration}` mapping."""
    if isinstance(value, dict):
        spec = vol.Schema({vol.Required("cron"): cv.cron, vol.Required("duration"): cv.positive_duration})(value)
        return {"cron": spec["cron"], "duration": spec["duration"],
                "text": f"{spec['cron']} for {spec['duration']}"}
    text = cv.string(value)
    match = _CLOCK_RANGE_RE.match(text)
    if not match:
        raise vol.Invalid(f"invalid quiet_hours '{text}' (expected e.g. '22:00-07:00' or {{cron, duration}})")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if max(start_h, end_h) > 23 or max(start_m, end_m) > 59:
        raise vol.Invalid(f"invalid time in quiet_hours '{text}' (use 00:00 to 23:59)")
    start = timedelta(hours=start_h, minutes=start_m)
    end = timedelta(hours=end_h, minutes=end_m)
    if start == end:
        raise vol.Invalid("quiet_hours must not start and end at the same time")
    # An end at or before the start means the quiet time runs past midnight.
    duration = (end - start) % timedelta(days=1)
    return {"cron": f"{start_m} {start_h} * * *", "duration": duration,
            "text": f"{start_h:02d}:{start_m:02d}-{end_h:02d}:{end_m:02d}"}


def _gather_urls(conf: dict[str, Any]) -> dict[str, Any]:
    """Merge `url` and `urls` into one `urls` list; at least one is required."""
    urls = [*([conf.pop("url")] if "url" in conf else []), *conf.get("urls", [])]
    if not urls:
        raise vol.Invalid("a target needs 'url' or 'urls'", path=["url"])
    conf["urls"] = urls
    return conf


def _reachable_events(conf: dict[str, Any]) -> dict[str, Any]:
    """Refuse an event that is named explicitly but sits below `min_severity` (it could never be sent)."""
    names = conf.get("events")
    if names is None:
        return conf
    floor = SEVERITY_RANK[conf["min_severity"]]
    errors = []
    for index, name in enumerate(names):
        types = expand_events([name])
        if types and all(SEVERITY_RANK[severity_of(t)] < floor for t in types):
            errors.append(vol.Invalid(
                f"'{name}' is {max(severity_of(t) for t in types)}, below min_severity "
                f"'{conf['min_severity']}', so it would never be sent (lower min_severity)",
                path=["events", index],
            ))
    if errors:
        raise vol.MultipleInvalid(errors)
    return conf


_LIST_OF_NAMES = vol.All(cv.ensure_list, [cv.string])

TARGET_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required("name"): cv.slug,
            vol.Optional("url"): cv.apprise_url,
            vol.Optional("urls"): vol.All(cv.ensure_list, [cv.apprise_url]),
            vol.Optional("events"): vol.All(cv.ensure_list, vol.Length(min=1), [event_name]),
            vol.Optional("min_severity", default="warning"): cv.one_of(*SEVERITIES),
            vol.Optional("stacks", default=[]): _LIST_OF_NAMES,
            vol.Optional("hosts", default=[]): _LIST_OF_NAMES,
            vol.Optional("tags", default=[]): _LIST_OF_NAMES,
            vol.Optional("quiet_hours"): quiet_hours,
            vol.Optional("fold", default="10m"): cv.duration,
            vol.Optional("timeout", default="10s"): cv.positive_duration,
            vol.Optional("retries", default=3): vol.All(vol.Coerce(int), vol.Range(min=0, max=10)),
            vol.Optional("backoff", default="5s"): cv.duration,
            vol.Optional("queue_size", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=10000)),
        }
    ),
    _gather_urls,
    _reachable_events,
)



def _no_targets_when_empty(value: Any) -> Any:
    """An empty `notify:` block means no targets (not one target without a name)."""
    return [] if value is None or value == {} else value


CONFIG_SCHEMA = vol.Schema(vol.All(_no_targets_when_empty, cv.ensure_list, [TARGET_SCHEMA], cv.unique_names("name")))
