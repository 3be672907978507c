"""https remotes with a token: it reaches the server, and never the disk, the logs, runs or answers."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer

from .conftest import HTTPS_TOKEN, GitRemote, settled


def _forbidden() -> list[bytes]:
    encoded = base64.b64encode(f"x-access-token:{HTTPS_TOKEN}".encode())
    return [HTTPS_TOKEN.encode(), encoded]


def _files_holding_secret(folder: Path) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(secret in data for secret in _forbidden()):
                hits.append(str(path.relative_to(folder)))
    return hits


def _config(url: str, token_line: str = "    token: !secret git_token\n") -> str:
    return f"repos:\n  - name: infra\n    url: {url}\n    username: x-access-token\n{token_line}"


async def test_token_from_secret_reaches_only_the_server(
    make_client: Any, remote: GitRemote, https_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = https_server.url_for(remote.bare)
    client = await make_client(_config(url), secrets={"git_token": HTTPS_TOKEN})
    app = client.app[APPLIANCE_KEY]
    runs = await settled(app)
    assert runs[-1]["status"] == "succeeded", runs
    repo = app.data[REPOS_MANAGER].get("infra")
    assert repo.head == remote.head
    # The server demanded the token and got it.
    assert any(r.get("Authorization") == https_server.expected for r in https_server.requests)

    new = remote.commit({"stacks/a/compose.yaml": "a\n"}, "Over https")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual")
    assert result.error is None and result.revision == new

    answer = await (await client.get("/api/v1/repos", headers=bearer("read"))).text()
    assert url in answer and HTTPS_TOKEN not in answer
    runs_answer = await (await client.get("/api/v1/runs?kind=sync", headers=bearer("read"))).text()
    for run in runs:
        runs_answer += await (await client.get(f"/api/v1/runs/{run['id']}", headers=bearer("read"))).text()
    assert not any(s.decode() in runs_answer for s in _forbidden())
    await client.close()  # flush the store, keep the files
    assert HTTPS_TOKEN not in (repo.path / ".git" / "config").read_text()
    assert _files_holding_secret(app.data_dir) == []
    assert not any(s.decode() in caplog.text for s in _forbidden())


async def test_token_inside_the_url_is_stripped(
    make_client: Any, remote: GitRemote, https_server: Any
) -> None:
    clean = https_server.url_for(remote.bare)
    client = await make_client(
        "repos:\n  - name: infra\n    url: !secret git_url\n",
        secrets={"git_url": https_server.url_for(remote.bare, f"x-access-token:{HTTPS_TOKEN}")},
    )
    app = client.app[APPLIANCE_KEY]
    runs = await settled(app)
    assert runs[-1]["status"] == "succeeded", runs
    listed = (await (await client.get("/api/v1/repos", headers=bearer("read"))).json())["repos"][0]
    assert listed["url"] == clean and listed["auth"] == "https-token"
    repo = app.data[REPOS_MANAGER].get("infra")
    await client.close()
    assert HTTPS_TOKEN not in (repo.path / ".git" / "config").read_text()
    assert _files_holding_secret(app.data_dir) == []


async def test_wrong_token_fails_in_words_and_keeps_head(
    make_client: Any, remote: GitRemote, https_server: Any
) -> None:
    url = https_server.url_for(remote.bare)
    client = await make_client(_config(url), secrets={"git_token": HTTPS_TOKEN})
    app = client.app[APPLIANCE_KEY]
    await settled(app)
    head = app.data[REPOS_MANAGER].get("infra").head
    assert head == remote.head
    await client.close()

    remote.commit({"b": "1\n"}, "Not reachable with a bad token")
    client = await make_client(_config(url), secrets={"git_token": "wrong-token-value"})
    app = client.app[APPLIANCE_KEY]
    runs = await settled(app)
    failed = runs[-1]
    assert failed["status"] == "failed" and failed["trigger"] == "startup"
    assert failed["error"] == f"authentication failed for {url}: the token or credentials were rejected"
    assert app.data[REPOS_MANAGER].get("infra").head == head
    assert https_server.denied >= 1
    run = await app.runs.get(failed["id"])
    assert "wrong-token-value" not in run["log"]
