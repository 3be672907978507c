"""The named config validators: what each accepts, and the exact message for what it refuses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from appliance import cv

ACCEPTED: list[tuple[Any, Any, Any]] = [
    (cv.cron, "*/5 * * * *", "*/5 * * * *"),
    (cv.cron, " 0 2 * * 6,0 ", "0 2 * * 6,0"),
    (cv.duration, "90s", timedelta(seconds=90)),
    (cv.duration, "5m", timedelta(minutes=5)),
    (cv.duration, "3h", timedelta(hours=3)),
    (cv.duration, "1h30m", timedelta(minutes=90)),
    (cv.duration, "250ms", timedelta(milliseconds=250)),
    (cv.duration, "2d", timedelta(days=2)),
    (cv.duration, 45, timedelta(seconds=45)),
    (cv.duration, 0, timedelta(0)),
    (cv.positive_duration, "1s", timedelta(seconds=1)),
    (cv.port, 22, 22),
    (cv.port, "8099", 8099),
    (cv.port, 65535, 65535),
    (cv.slug, "debian-vm_2", "debian-vm_2"),
    (cv.url, "https://dockmaster.example.lan", "https://dockmaster.example.lan"),
    (cv.url, "http://127.0.0.1:8099/", "http://127.0.0.1:8099/"),
    (cv.apprise_url, "ntfy://ntfy.sh/topic", "ntfy://ntfy.sh/topic"),
    (cv.apprise_url, "json://127.0.0.1:9000/hook", "json://127.0.0.1:9000/hook"),
    (cv.git_url, "git@github.com:me/infra.git", "git@github.com:me/infra.git"),
    (cv.git_url, "https://github.com/me/infra.git", "https://github.com/me/infra.git"),
    (cv.git_url, "file:///srv/git/infra.git", "file:///srv/git/infra.git"),
    (cv.git_url, "/srv/git/infra", "/srv/git/infra"),
    (cv.host, "192.168.1.20", "192.168.1.20"),
    (cv.host, "nas.example.lan", "nas.example.lan"),
    (cv.host, "fe80::1", "fe80::1"),
    (cv.path, "/config/keys/infra", Path("/config/keys/infra")),
    (cv.relative_path, "stacks/traefik/", "stacks/traefik"),
    (cv.time_zone, "Europe/Berlin", "Europe/Berlin"),
    (cv.log_level, "INFO", "info"),
    (cv.boolean, "yes", True),
    (cv.boolean, "off", False),
    (cv.ip_network, "10.0.0.0/8", "10.0.0.0/8"),
    (cv.ip_network, "::1", "::1"),
    (cv.string, 42, "42"),
    (cv.positive_int, "3", 3),
    (cv.percentage, "12.5", 12.5),
]

REFUSED: list[tuple[Any, Any, str]] = [
    (cv.cron, "0 2 * *", "invalid cron expression '0 2 * *' (expected 5 fields, e.g. '*/5 * * * *')"),
    (cv.cron, "61 * * * *", "invalid cron expression '61 * * * *' (expected 5 fields, e.g. '*/5 * * * *')"),
    (cv.cron, "0 0 0 * * *", "invalid cron expression '0 0 0 * * *' (expected 5 fields, e.g. '*/5 * * * *')"),
    (cv.cron, None, "expected a string"),
    (cv.duration, "forever", "invalid duration 'forever' (expected e.g. 90s, 5m, 3h, 1h30m)"),
    (cv.duration, "5 minutes", "invalid duration '5 minutes' (expected e.g. 90s, 5m, 3h, 1h30m)"),
    (cv.duration, "", "invalid duration '' (expected e.g. 90s, 5m, 3h, 1h30m)"),
    (cv.duration, -1, "duration must not be negative"),
    (cv.duration, True, "expected a duration like 90s, 5m or 3h"),
    (cv.positive_duration, "0s", "duration must be greater than zero"),
    (cv.port, 0, "port must be between 1 and 65535, got 0"),
    (cv.port, 70000, "port must be between 1 and 65535, got 70000"),
    (cv.port, "ssh", "expected a port number, got 'ssh'"),
    (cv.port, True, "port must be between 1 and 65535, got True"),
    (cv.slug, "Debian VM",
     "invalid name 'Debian VM' (use lowercase letters, digits, '-' and '_', at most 63 characters)"),
    (cv.slug, "-x", "invalid name '-x' (use lowercase letters, digits, '-' and '_', at most 63 characters)"),
    (cv.url, "ftp://example.lan", "invalid URL 'ftp://example.lan' (expected http:// or https://)"),
    (cv.url, "example.lan", "invalid URL 'example.lan' (expected http:// or https://)"),
    (cv.apprise_url, "not a url", "invalid Apprise URL (expected scheme://..., e.g. ntfy://host/topic)"),
    (cv.git_url, "", "git URL must not be empty"),
    (cv.git_url, "infra.git", "invalid git URL 'infra.git' (expected https://, ssh://, user@host:path or a path)"),
    (cv.host, "bad host!", "invalid host 'bad host!'"),
    (cv.path, "", "invalid path"),
    (cv.relative_path, "../etc", "path must stay inside the repo: '../etc'"),
    (cv.relative_path, "/etc/passwd", "path must stay inside the repo: '/etc/passwd'"),
    (cv.relative_path, "stacks/../../x", "path must stay inside the repo: 'stacks/../../x'"),
    (cv.time_zone, "Mars/Olympus", "unknown time zone 'Mars/Olympus' (expected e.g. Europe/Berlin or UTC)"),
    (cv.log_level, "verbose", "log_level must be one of debug, info, warning, error"),
    (cv.boolean, "maybe", "expected a boolean, got 'maybe'"),
    (cv.ip_network, "nope", "invalid IP address or network 'nope' (e.g. 192.168.1.10 or 10.0.0.0/8)"),
    (cv.string, {"a": 1}, "expected a string"),
    (cv.string, True, "expected a string, got a boolean (quote it)"),
    (cv.one_of("apt", "dnf"), "yum", "expected one of apt, dnf, got 'yum'"),
    (cv.positive_int, 0, "value must be at least 1"),
    (cv.percentage, 101, "value must be at most 100"),
]


@pytest.mark.parametrize(("validator", "value", "expected"), ACCEPTED)
def test_accepts(validator: Any, value: Any, expected: Any) -> None:
    assert validator(value) == expected


@pytest.mark.parametrize(("validator", "value", "message"), REFUSED)
def test_refuses_with_message(validator: Any, value: Any, message: str) -> None:
    with pytest.raises(vol.Invalid) as info:
        validator(value)
    assert str(info.value.msg) == message


def test_existing_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k")
    assert cv.existing_file(str(tmp_path / "key")) == tmp_path / "key"
    with pytest.raises(vol.Invalid, match=r"^file not found: .*/missing$"):
        cv.existing_file(str(tmp_path / "missing"))


def test_ensure_list_of() -> None:
    assert cv.ensure_list_of(cv.slug)("web") == ["web"]
    assert cv.ensure_list_of(cv.slug)(None) == []
    assert cv.ensure_list_of(cv.port)(["22", 80]) == [22, 80]


def test_unique_names_reports_every_duplicate_with_its_index() -> None:
    with pytest.raises(vol.MultipleInvalid) as info:
        cv.unique_names()([{"name": "a"}, {"name": "b"}, {"name": "a"}, {"name": "b"}])
    assert [(e.msg, e.path) for e in info.value.errors] == [
        ("duplicate name 'a'", [2, "name"]),
        ("duplicate name 'b'", [3, "name"]),
    ]
