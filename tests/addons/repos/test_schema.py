"""Config validation of `repos:`: a table of snippets and the exact message each one gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.config import check_config


@pytest.fixture
def check(write_config: Callable[..., Path], tmp_path: Path) -> Callable[[str], list[str]]:
    """Validate a repos block; returns the issue messages for the repos domain."""
    (tmp_path / "key").write_text("k")

    def _check(block: str) -> list[str]:
        result = check_config(write_config("repos:\n" + block.replace("KEY", str(tmp_path / "key"))))
        return [f"{i.path}: {i.message}" for i in result.issues if i.path.startswith("repos")]

    return _check


@pytest.mark.parametrize(("block", "messages"), [
    ("  - name: infra\n    url: /srv/git/infra.git\n", []),
    ("  - name: infra\n    url: git@github.com:me/infra.git\n    ssh_key: KEY\n    known_hosts: KEY\n"
     "    poll: '*/5 * * * *'\n    branch: release/1.2\n    depth: 1\n    fetch_timeout: 30s\n", []),
    ("  - name: Infra\n    url: /x\n",
     ["repos[0].name: invalid name 'Infra' (use lowercase letters, digits, '-' and '_', at most 63 characters)"]),
    ("  - name: infra\n    url: ftp://x/y\n",
     ["repos[0].url: invalid git URL 'ftp://x/y' (expected https://, ssh://, user@host:path or a path)"]),
    ("  - name: infra\n    url: /x\n    branch: 'bad..name'\n", ["repos[0].branch: invalid branch name 'bad..name'"]),
    ("  - name: infra\n    url: /x\n    branch: '-main'\n", ["repos[0].branch: invalid branch name '-main'"]),
    ("  - name: infra\n    url: /x\n    poll: every minute\n",
     ["repos[0].poll: invalid cron expression 'every minute' (expected 5 fields, e.g. '*/5 * * * *')"]),
    ("  - name: infra\n    url: /x\n    ssh_key: /does/not/exist\n",
     ["repos[0].ssh_key: file not found: /does/not/exist"]),
    ("  - name: infra\n    url: https://example.invalid/x.git\n    ssh_key: KEY\n",
     ["repos[0].ssh_key: ssh_key only applies to ssh URLs (ssh:// or user@host:path)"]),
    ("  - name: infra\n    url: git@github.com:me/infra.git\n    token: abcd\n",
     ["repos[0].token: token only applies to https URLs"]),
    ("  - name: infra\n    url: http://example.invalid/x.git\n    token: abcd\n",
     ["repos[0].url: refusing to send a token over plain http; use https://"]),
    ("  - name: infra\n    url: https://u:t@example.invalid/x.git\n    token: abcd\n",
     ["repos[0].token: give the token either in the URL or as 'token', not both"]),
    ("  - name: infra\n    url: /x\n    fetch_timout: 10s\n",
     ["repos[0].fetch_timout: unknown key 'fetch_timout', did you mean 'fetch_timeout'?"]),
    ("  - name: infra\n    url: /x\n  - name: infra\n    url: /y\n", ["repos[1].name: duplicate name 'infra'"]),
    ("  - url: /x\n", ["repos[0].name: required key 'name' is missing"]),
    ("  - name: infra\n    url: /x\n    depth: 0\n", ["repos[0].depth: value must be at least 1"]),
])
def test_config_messages(check: Callable[[str], list[str]], block: str, messages: list[str]) -> None:
    assert check(block) == messages
