"""The `notify:` schema: located errors with hints, event groups, quiet hours, defaults."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from addons.notify.schema import CONFIG_SCHEMA, expand_events
from appliance.config import check_config


def _check(tmp_path: Path, notify_yaml: str, secrets: str = "") -> list[str]:
    config = tmp_path / "config.yaml"
    config.write_text("dockmaster: {name: t}\n" + notify_yaml)
    if secrets:
        (tmp_path / "secrets.yaml").write_text(secrets)
    return [str(issue) for issue in check_config(config).issues]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    events: [deploy_faild]\n",
         "notify[0].events[0]: unknown event 'deploy_faild', did you mean 'deploy_failed'? (config.yaml, line 5)"),
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    events: [rollbak]\n",
         "notify[0].events[0]: unknown event 'rollbak', did you mean 'rollback'? (config.yaml, line 5)"),
        ("  - name: phone\n",
         "notify[0].url: a target needs 'url' or 'urls' (config.yaml, line 3)"),
        ("  - name: phone\n    url: not a url\n",
         "notify[0].url: invalid Apprise URL (expected scheme://..., e.g. ntfy://host/topic) (config.yaml, line 4)"),
        ("  - name: Phone!\n    url: json://127.0.0.1:8098/\n",
         "notify[0].name: invalid name 'Phone!' (use lowercase letters, digits, '-' and '_', at most 63 characters)"
         " (config.yaml, line 3)"),
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    min_severity: urgent\n",
         "notify[0].min_severity: expected one of info, warning, critical, got 'urgent' (config.yaml, line 5)"),
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    quiet_hours: '22-07'\n",
         "notify[0].quiet_hours: invalid quiet_hours '22-07' (expected e.g. '22:00-07:00' or {cron, duration})"
         " (config.yaml, line 5)"),
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    quiet_hours: '07:00-07:00'\n",
         "notify[0].quiet_hours: quiet_hours must not start and end at the same time (config.yaml, line 5)"),
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    events: [deploy_succeeded]\n",
         "notify[0].events[0]: 'deploy_succeeded' is info, below min_severity 'warning', so it would never be"
         " sent (lower min_severity) (config.yaml, line 5)"),
        ("  - name: phone\n    url: json://127.0.0.1:8098/\n    retrys: 2\n",
         "notify[0].retrys: unknown key 'retrys', did you mean 'retries'? (config.yaml, line 5)"),
        ("  - name: a\n    url: json://127.0.0.1:8098/\n  - name: a\n    url: json://127.0.0.1:8098/\n",
         "notify[1].name: duplicate name 'a' (config.yaml, line 5)"),
    ],
)
def test_config_errors_are_located(tmp_path: Path, snippet: str, message: str) -> None:
    assert _check(tmp_path, "notify:\n" + snippet) == [message]


def test_defaults_and_secret_url(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("notify:\n  - name: phone\n    url: !secret phone\n")
    (tmp_path / "secrets.yaml").write_text("phone: ntfy://ntfy.example/alerts-x\n")
    checked = check_config(config)
    assert checked.issues == []
    target = checked.domains["notify"][0]
    assert target["urls"] == ["ntfy://ntfy.example/alerts-x"]
    assert target["min_severity"] == "warning"
    assert target["fold"] == timedelta(minutes=10)
    assert target["timeout"] == timedelta(seconds=10)
    assert target["retries"] == 3
    assert "events" not in target


def test_url_and_urls_merge() -> None:
    [target] = CONFIG_SCHEMA([{"name": "a", "url": "json://h/", "urls": ["ntfy://h/t", "mailto://u:p@h.example"]}])
    assert target["urls"] == ["json://h/", "ntfy://h/t", "mailto://u:p@h.example"]


def test_empty_block_means_no_targets() -> None:
    assert CONFIG_SCHEMA(None) == []


def test_groups_expand() -> None:
    assert expand_events(["rollback", "host_failed", "deploy_failed"]) == {
        "rollback_succeeded", "rollback_failed", "host_update_failed", "deploy_failed"}
    assert "drift_detected" in expand_events(["drift"])
    assert "image_update_available" in expand_events(None)


@pytest.mark.parametrize(
    ("text", "cron", "hours"),
    [("22:00-07:00", "0 22 * * *", 9), ("01:30-05:00", "30 1 * * *", 3.5), ("23:00-00:00", "0 23 * * *", 1)],
)
def test_quiet_hours_clock_form(text: str, cron: str, hours: float) -> None:
    [target] = CONFIG_SCHEMA([{"name": "a", "url": "json://h/", "quiet_hours": text}])
    assert target["quiet_hours"]["cron"] == cron
    assert target["quiet_hours"]["duration"] == timedelta(hours=hours)


def test_quiet_hours_cron_form() -> None:
    [target] = CONFIG_SCHEMA([{"name": "a", "url": "json://h/", "quiet_hours": {"cron": "0 22 * * 1-5",
                                                                                "duration": "9h"}}])
    assert target["quiet_hours"]["duration"] == timedelta(hours=9)
