"""check_config gathers every problem with path, file and line; the CLI prints them and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import check_config

VENV_BIN = Path(sys.executable).parent
DOCKMASTER = str(VENV_BIN / "dockmaster")

# YAML snippet (the whole config.yaml) -> the exact located messages, in file/line order.
CASES: list[tuple[str, list[str]]] = [
    (
        "dockmaster:\n  log_levl: info\n",
        ["dockmaster.log_levl: unknown key 'log_levl', did you mean 'log_level'? (config.yaml, line 2)"],
    ),
    (
        "dockmaster:\n  colour: blue\n",
        ["dockmaster.colour: unknown key 'colour' (allowed: data_dir, log_level, name, retention, time_zone) "
         "(config.yaml, line 2)"],
    ),
    (
        "dockmaster:\n  time_zone: Mars/Olympus\n",
        ["dockmaster.time_zone: unknown time zone 'Mars/Olympus' (expected e.g. Europe/Berlin or UTC) "
         "(config.yaml, line 2)"],
    ),
    ("dockmaster: [1, 2]\n", ["dockmaster: expected a dictionary (config.yaml, line 1)"]),
    (
        "http:\n  host: 127.0.0.1\n  port: 70000\n",
        ["http.port: port must be between 1 and 65535, got 70000 (config.yaml, line 3)"],
    ),
    ("http:\n  port: web\n", ["http.port: expected a port number, got 'web' (config.yaml, line 2)"]),
    (
        "http:\n  base_url: ftp://x\n",
        ["http.base_url: invalid URL 'ftp://x' (expected http:// or https://) (config.yaml, line 2)"],
    ),
    (
        "http:\n  trusted_proxies: [10.0.0.0/8, nope]\n",
        ["http.trusted_proxies[1]: invalid IP address or network 'nope' (e.g. 192.168.1.10 or 10.0.0.0/8) "
         "(config.yaml, line 2)"],
    ),
    (
        "http:\n  session_idle_timeout: soon\n",
        ["http.session_idle_timeout: invalid duration 'soon' (expected e.g. 90s, 5m, 3h, 1h30m) "
         "(config.yaml, line 2)"],
    ),
    (
        "auth:\n  users:\n    - username: admin\n",
        ["auth.users[0].password_hash: required key 'password_hash' is missing (config.yaml, line 3)"],
    ),
    (
        "auth:\n  users:\n    - username: admin\n      password_hash: hunter2\n",
        ["auth.users[0].password_hash: password_hash must be an argon2id hash made by `dockmaster hash-password` "
         "(config.yaml, line 4)"],
    ),
    (
        "auth:\n  tokens:\n    - name: ha\n      token_hash: sha256:abc\n      scopes: [read, root]\n",
        [
            "auth.tokens[0].token_hash: token_hash must look like sha256:<64 hex digits> "
            "(made by `dockmaster token create NAME`) (config.yaml, line 4)",
            "auth.tokens[0].scopes[1]: expected one of read, deploy, admin, got 'root' (config.yaml, line 5)",
        ],
    ),
    (
        "auth:\n  tokens:\n    - {name: ha, token_hash: 'sha256:" + "a" * 64 + "'}\n"
        "    - {name: ha, token_hash: 'sha256:" + "b" * 64 + "'}\n",
        ["auth.tokens[1].name: duplicate name 'ha' (config.yaml, line 4)"],
    ),
    (
        "windws:\n  nightly: {cron: '0 2 * * *', duration: 3h}\n",
        ["windws: unknown top-level key 'windws' (no such addon), did you mean 'windows'? (config.yaml, line 1)"],
    ),
    (
        "windows:\n  nightly: {cron: '0 2 * *', duration: 3h}\n",
        ["windows.nightly.cron: invalid cron expression '0 2 * *' (expected 5 fields, e.g. '*/5 * * * *') "
         "(config.yaml, line 2)"],
    ),
    (
        "windows:\n  nightly:\n    cron: '0 2 * * *'\n    duration: forever\n",
        ["windows.nightly.duration: invalid duration 'forever' (expected e.g. 90s, 5m, 3h, 1h30m) "
         "(config.yaml, line 4)"],
    ),
    (
        "windows:\n  nightly:\n    cron: '0 2 * * *'\n",
        ["windows.nightly.duration: required key 'duration' is missing (config.yaml, line 2)"],
    ),
    (
        "windows:\n  Night Shift: {cron: '0 2 * * *', duration: 3h}\n",
        ["windows.Night Shift: invalid name 'Night Shift' (use lowercase letters, digits, '-' and '_', "
         "at most 63 characters) (config.yaml, line 2)"],
    ),
    (
        "dockmaster:\n  name: !secret missing\n",
        ["dockmaster.name: secret 'missing' cannot be read: secrets.yaml does not exist (config.yaml, line 2)"],
    ),
    (
        "dockmaster:\n  name: !env_var DM_TEST_SURELY_UNSET\n",
        ["dockmaster.name: environment variable DM_TEST_SURELY_UNSET is not set and has no default "
         "(config.yaml, line 2)"],
    ),
    (
        "dockmaster:\n  name: x\n  name: y\n",
        ["dockmaster.name: duplicate key 'name' (config.yaml, line 3)"],
    ),
    (
        "dockmaster:\n  name: [x\n",
        ["invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence started on "
         "line 2) (config.yaml, line 3)"],
    ),
    ("", ["config file is empty (config.yaml, line 1)"]),
    ("- a\n- b\n", ["config must be a mapping of top-level keys (config.yaml, line 1)"]),
]


@pytest.mark.parametrize(("snippet", "messages"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_check_config_messages(tmp_path: Path, snippet: str, messages: list[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(snippet)
    result = check_config(path)
    assert [str(issue) for issue in result.issues] == messages
    assert not result.ok


def test_clean_config_fills_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("windows:\n  nightly: {cron: '0 2 * * *', duration: 3h}\n")
    result = check_config(path)
    assert result.ok, result.issues
    assert result.domains["http"]["port"] == 8099
    assert result.domains["dockmaster"]["time_zone"] == "UTC"
    assert result.domains["auth"]["login_attempts"] == 5
    assert result.domains["windows"]["nightly"]["duration"].total_seconds() == 3 * 3600


def test_issue_as_dict(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("http:\n  port: 0\n")
    (issue,) = check_config(path).issues
    assert issue.as_dict() == {
        "path": "http.port", "message": "port must be between 1 and 65535, got 0",
        "file": "config.yaml", "line": 2,
    }


FIVE_MISTAKES_CONFIG = """\
dockmaster:
  name: homelab
  time_zone: Europe/Berlin
  log_levl: info                # 1: unknown key (did you mean)
http:
  port: 80800                   # 2: port out of range
auth: !include auth.yaml
windows:
  nightly: {cron: "0 2 * *", duration: 3h}   # 4: invalid cron
  weekend: {cron: "0 2 * * 6,0", duration: 4 hours}   # 5: invalid duration
"""
FIVE_MISTAKES_AUTH = """\
users:
  - username: admin
    password_hash: !secret admin_password_hash   # 3: missing secret
"""


def _five_mistakes(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(FIVE_MISTAKES_CONFIG)
    (tmp_path / "auth.yaml").write_text(FIVE_MISTAKES_AUTH)
    (tmp_path / "secrets.yaml").write_text("ha_token_hash: nothing\n")
    return tmp_path / "config.yaml"


def test_five_mistakes_give_five_located_messages(tmp_path: Path) -> None:
    result = check_config(_five_mistakes(tmp_path))
    assert [str(issue) for issue in result.issues] == [
        "auth.users[0].password_hash: secret 'admin_password_hash' is not defined in secrets.yaml (auth.yaml, line 3)",
        "dockmaster.log_levl: unknown key 'log_levl', did you mean 'log_level'? (config.yaml, line 4)",
        "http.port: port must be between 1 and 65535, got 80800 (config.yaml, line 6)",
        "windows.nightly.cron: invalid cron expression '0 2 * *' (expected 5 fields, e.g. '*/5 * * * *') "
        "(config.yaml, line 9)",
        "windows.weekend.duration: invalid duration '4 hours' (expected e.g. 90s, 5m, 3h, 1h30m) "
        "(config.yaml, line 10)",
    ]


def test_cli_check_config_exits_2_with_five_messages_and_no_traceback(tmp_path: Path) -> None:
    path = _five_mistakes(tmp_path)
    proc = subprocess.run([DOCKMASTER, "check-config", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == 5
    assert all(("config.yaml, line" in line) or ("auth.yaml, line" in line) for line in lines)
    assert "5 problem(s) found" in proc.stderr


def test_cli_check_config_clean_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("dockmaster:\n  name: ok\nwindows:\n  nightly: {cron: '0 2 * * *', duration: 3h}\n")
    proc = subprocess.run([DOCKMASTER, "check-config", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "configuration is valid" in proc.stdout


@pytest.mark.parametrize(
    "text",
    ["a: [1\n", "a: !include a.yaml\n", "\x00\x01binary", "dockmaster: !secret x\n", "? [a]\n: b\n"],
)
def test_cli_never_prints_a_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    (tmp_path / "a.yaml").write_text("b: !include config.yaml\n")
    path.write_text(text)
    proc = subprocess.run([DOCKMASTER, "check-config", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "config.yaml" in proc.stderr


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run([DOCKMASTER, "check-config", "-c", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "config file not found" in proc.stderr


def test_messages_never_quote_a_secret_or_url_credentials(tmp_path: Path) -> None:
    # Issues are logged, served by /api/v1/status and shown on every page: a bad value is quoted, a secret is not.
    (tmp_path / "secrets.yaml").write_text("repo_url: htps://deploy:tok-3f9a1c77e2@git.example.lan/infra.git\n"
                                           "zone: Mars/SecretZone-91b2\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "dockmaster:\n  time_zone: !secret zone\n"
        "http:\n  base_url: ftp://admin:pw-77c1e0aa@dm.example.lan/\n"
        "repos:\n  - name: infra\n    url: !secret repo_url\n"
    )
    result = check_config(path)
    text = "\n".join(str(issue) for issue in result.issues)
    assert len(result.issues) == 3, text
    for secret in ("tok-3f9a1c77e2", "SecretZone-91b2", "pw-77c1e0aa"):
        assert secret not in text
    assert "unknown time zone '<secret zone>'" in text
    assert "invalid git URL 'htps://git.example.lan/infra.git'" in text
    assert "invalid URL 'ftp://dm.example.lan/'" in text
