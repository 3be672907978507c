"""The YAML loader: !secret, !include, !env_var, and a file and line on every value and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.yaml import Mark, NodeDict, Secret, load_config_yaml, locate, strip_marks


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path / "config.yaml"


def _messages(issues: list) -> list[str]:
    return [f"{issue.message} ({issue.mark})" for issue in issues]


def test_secret_is_resolved_and_hidden_in_repr(tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "config.yaml": "notify:\n  url: !secret ntfy_url\n",
        "secrets.yaml": "ntfy_url: ntfy://example/topic\n",
    })
    data, issues = load_config_yaml(path)
    assert issues == []
    value = data["notify"]["url"]
    assert isinstance(value, Secret)
    assert value == "ntfy://example/topic"
    assert "ntfy://" not in repr(value)
    assert value.mark == Mark("config.yaml", 2)


def test_missing_secret_is_located(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config.yaml": "a:\n  b: !secret nope\n", "secrets.yaml": "other: x\n"})
    _, issues = load_config_yaml(path)
    assert _messages(issues) == ["secret 'nope' is not defined in secrets.yaml (config.yaml, line 2)"]


def test_secret_without_secrets_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config.yaml": "a: !secret nope\n"})
    _, issues = load_config_yaml(path)
    assert _messages(issues) == ["secret 'nope' cannot be read: secrets.yaml does not exist (config.yaml, line 1)"]


def test_secrets_file_cannot_use_tags(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config.yaml": "a: !secret x\n", "secrets.yaml": "x: !include /etc/passwd\n"})
    _, issues = load_config_yaml(path)
    assert _messages(issues) == [
        "invalid YAML: could not determine a constructor for the tag '!include' (secrets.yaml, line 1)",
        "secret 'x' cannot be read: secrets.yaml has errors (config.yaml, line 1)",
    ]


def test_include_keeps_the_included_files_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "config.yaml": "dockmaster:\n  name: x\nwindows: !include conf/windows.yaml\n",
        "conf/windows.yaml": "# windows\n\nnightly:\n  cron: '0 2 * * *'\n  duration: 3h\n",
    })
    data, issues = load_config_yaml(path)
    assert issues == []
    assert strip_marks(data) == {
        "dockmaster": {"name": "x"},
        "windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h"}},
    }
    assert locate(data, ["windows", "nightly", "duration"]) == Mark("conf/windows.yaml", 5)
    assert locate(data, ["dockmaster", "name"]) == Mark("config.yaml", 2)


def test_include_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config.yaml": "a: 1\nb: !include nothere.yaml\n"})
    _, issues = load_config_yaml(path)
    assert _messages(issues) == ["!include file not found: nothere.yaml (config.yaml, line 2)"]


def test_include_loop_is_reported_once_with_the_chain(tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "config.yaml": "a: !include one.yaml\n",
        "one.yaml": "b: !include two.yaml\n",
        "two.yaml": "c: !include one.yaml\n",
    })
    data, issues = load_config_yaml(path)
    assert _messages(issues) == [
        "!include loop: config.yaml -> one.yaml -> two.yaml -> one.yaml (two.yaml, line 1)"
    ]
    assert strip_marks(data) == {"a": {"b": {"c": ""}}}


def test_env_var_with_and_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_TEST_SET", "from-env")
    monkeypatch.delenv("DM_TEST_UNSET", raising=False)
    path = _write(tmp_path, {
        "config.yaml": (
            "a: !env_var DM_TEST_SET\n"
            "b: !env_var DM_TEST_UNSET fallback value\n"
            "c: !env_var DM_TEST_SET ignored default\n"
            "d: !env_var DM_TEST_UNSET\n"
        ),
    })
    data, issues = load_config_yaml(path)
    assert strip_marks(data) == {"a": "from-env", "b": "fallback value", "c": "from-env", "d": ""}
    assert _messages(issues) == [
        "environment variable DM_TEST_UNSET is not set and has no default (config.yaml, line 4)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1\nb: 2\n",
         "invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence started on line 1) "
         "(config.yaml, line 2)"),
        ("a:\n  b: c\n d: e\n",
         "invalid YAML: expected <block end>, but found '<block mapping start>' "
         "(while parsing a block mapping started on line 1) (config.yaml, line 3)"),
        ("a: 1\nb: \"open\n",
         "invalid YAML: found unexpected end of stream (while scanning a quoted scalar started on line 2) "
         "(config.yaml, line 3)"),
        ("a: 1\na: 2\n", "duplicate key 'a' (config.yaml, line 2)"),
        ("a: !nope x\n", "invalid YAML: could not determine a constructor for the tag '!nope' (config.yaml, line 1)"),
    ],
)
def test_malformed_yaml_has_a_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, {"config.yaml": text})
    _, issues = load_config_yaml(path)
    assert _messages(issues) == [message]


def test_malformed_included_file_names_that_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config.yaml": "a: !include inc.yaml\n", "inc.yaml": "x: 1\ny: [\n"})
    _, issues = load_config_yaml(path)
    assert len(issues) == 1
    assert issues[0].mark is not None and issues[0].mark.file == "inc.yaml"


def test_every_node_keeps_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config.yaml": "list:\n  - name: a\n  - name: b\n    extra: 1\n"})
    data, _ = load_config_yaml(path)
    assert isinstance(data, NodeDict)
    assert locate(data, ["list", 1, "extra"]) == Mark("config.yaml", 4)
    assert locate(data, ["list", 1]) == Mark("config.yaml", 3)
    assert locate(data, ["list", 5, "x"]) == Mark("config.yaml", 1)  # closest known: the key
