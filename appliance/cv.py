"""Small named config validators shared by the core and every addon (`cv.cron`, `cv.duration`...)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import voluptuous as vol
from croniter import croniter

T = TypeVar("T")

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_APPRISE_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]{1,30}://", re.IGNORECASE)
_SCP_GIT_RE = re.compile(r"^[\w.-]+@[\w.-]+:[\w./~-]+$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def string(value: Any) -> str:
    """Accept a scalar and return it as a string; refuse mappings, lists and null."""
    if value is None or isinstance(value, dict | list):
        raise vol.Invalid("expected a string")
    if isinstance(value, bool):
        raise vol.Invalid("expected a string, got a boolean (quote it)")
    return value if isinstance(value, str) else str(value)


def boolean(value: Any) -> bool:
    """Accept true/false and the usual spellings (yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "on", "1", "enable"):
            return True
        if lowered in ("false", "no", "off", "0", "disable"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise vol.Invalid(f"expected a boolean, got {value!r}")


def ensure_list(value: Any) -> list[Any]:
    """Wrap a single value in a list; null becomes an empty list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ensure_list_of(validator: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    """Validate a value or list of values with one validator."""

    def _validate(value: Any) -> list[T]:
        return [validator(item) for item in ensure_list(value)]

    return _validate


def cron(value: Any) -> str:
    """A five-field cron expression (croniter syntax)."""
    text = string(value).strip()
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise vol.Invalid(f"invalid cron expression '{text}' (expected 5 fields, e.g. '*/5 * * * *')")
    return text


def duration(value: Any) -> timedelta:
    """A duration such as `90s`, `5m`, `3h`, `1h30m`, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise vol.Invalid("expected a duration like 90s, 5m or 3h")
    if isinstance(value, int | float):
        if value < 0:
            raise vol.Invalid("duration must not be negative")
        return timedelta(seconds=value)
    text = string(value).strip().lower().replace(" ", "")
    if not text or _DURATION_RE.sub("", text):
        raise vol.Invalid(f"invalid duration '{value}' (expected e.g. 90s, 5m, 3h, 1h30m)")
    seconds = sum(float(num) * _DURATION_UNITS[unit] for num, unit in _DURATION_RE.findall(text))
    return timedelta(seconds=seconds)


def positive_duration(value: Any) -> timedelta:
    """A duration greater than zero."""
    result = duration(value)
    if result.total_seconds() <= 0:
        raise vol.Invalid("duration must be greater than zero")
    return result


def port(value: Any) -> int:
    """A TCP port number 1-65535."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise vol.Invalid(f"expected a port number, got {value!r}") from None
    if isinstance(value, bool) or not 1 <= number <= 65535:
        raise vol.Invalid(f"port must be between 1 and 65535, got {value!r}")
    return number


def positive_int(value: Any) -> int:
    """An integer of at least 1."""
    return vol.All(vol.Coerce(int), vol.Range(min=1))(value)


def percentage(value: Any) -> float:
    """A number from 0 to 100."""
    return vol.All(vol.Coerce(float), vol.Range(min=0, max=100))(value)


def slug(value: Any) -> str:
    """A lowercase name: letters, digits, `-` and `_`, starting with a letter or digit."""
    text = string(value)
    if not _SLUG_RE.match(text):
        raise vol.Invalid(
            f"invalid name '{text}' (use lowercase letters, digits, '-' and '_', at most 63 characters)"
        )
    return text


def url(value: Any) -> str:
    """An http(s) URL with a host."""
    text = string(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise vol.Invalid(f"invalid URL '{_without_userinfo(text)}' (expected http:// or https://)")
    return text


def apprise_url(value: Any) -> str:
    """An Apprise notification URL such as `ntfy://topic` or `tgram://token/chat`."""
    text = string(value).strip()
    if not _APPRISE_SCHEME_RE.match(text):
        raise vol.Invalid("invalid Apprise URL (expected scheme://..., e.g. ntfy://host/topic)")
    return text


def git_url(value: Any) -> str:
    """A git remote: https://, ssh://, git://, file://, user@host:path, or a local path."""
    text = string(value).strip()
    if not text:
        raise vol.Invalid("git URL must not be empty")
    if _SCP_GIT_RE.match(text) or text.startswith(("/", "./", "../", "~")):
        return text
    parts = urlsplit(text)
    if parts.scheme in ("https", "http", "ssh", "git", "file") and (parts.netloc or parts.scheme == "file"):
        return text
    raise vol.Invalid(
        f"invalid git URL '{_without_userinfo(text)}' (expected https://, ssh://, user@host:path or a path)"
    )


def _without_userinfo(text: str) -> str:
    """A URL for an error message: `user:token@` is dropped, since messages are shown and logged."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2] if '@' in netloc else netloc}{slash}{path}"


def host(value: Any) -> str:
    """A hostname or IP address."""
    text = string(value).strip()
    if ":" in text and text.count(":") >= 2:
        return text  # IPv6 literal
    if not _HOSTNAME_RE.match(text):
        raise vol.Invalid(f"invalid host '{text}'")
    return text


def ip_network(value: Any) -> str:
    """An IP address or network in CIDR form (`192.168.1.10`, `172.16.0.0/12`, `::1`)."""
    text = string(value).strip()
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise vol.Invalid(f"invalid IP address or network '{text}' (e.g. 192.168.1.10 or 10.0.0.0/8)") from None
    return text


def path(value: Any) -> Path:
    """A filesystem path (not checked for existence)."""
    text = string(value).strip()
    if not text or "\x00" in text:
        raise vol.Invalid("invalid path")
    return Path(text).expanduser()


def existing_file(value: Any) -> Path:
    """A path to a file that exists."""
    result = path(value)
    if not result.is_file():
        raise vol.Invalid(f"file not found: {result}")
    return result


def relative_path(value: Any) -> str:
    """A relative path that cannot climb out of its base (`..` and absolute paths are refused)."""
    text = string(value).strip()
    if text.startswith(("/", "~")) or any(part == ".." for part in Path(text).parts):
        raise vol.Invalid(f"path must stay inside the repo: '{text}'")
    return text.rstrip("/") or "."


def time_zone(value: Any) -> str:
    """An IANA time zone name such as Europe/Berlin."""
    text = string(value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise vol.Invalid(f"unknown time zone '{text}' (expected e.g. Europe/Berlin or UTC)") from None
    return text


def log_level(value: Any) -> str:
    """One of debug, info, warning, error."""
    text = string(value).strip().lower()
    if text not in ("debug", "info", "warning", "error"):
        raise vol.Invalid("log_level must be one of debug, info, warning, error")
    return text


def one_of(*choices: str) -> Callable[[Any], str]:
    """A string that must be one of the given choices."""

    def _validate(value: Any) -> str:
        text = string(value)
        if text not in choices:
            raise vol.Invalid(f"expected one of {', '.join(choices)}, got '{text}'")
        return text

    return _validate


def unique_names(key: str = "name") -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Refuse a list of mappings in which two items share the same `key`."""

    def _validate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[Any] = set()
        errors = []
        for index, item in enumerate(items):
            name = item.get(key) if isinstance(item, dict) else None
            if name is None:
                continue
            if name in seen:
                errors.append(vol.Invalid(f"duplicate {key} '{name}'", path=[index, key]))
            seen.add(name)
        if errors:
            raise vol.MultipleInvalid(errors)
        return items

    return _validate
