"""The repos API and UI page: listing, sync requests with audit, scopes and CSRF."""

from __future__ import annotations

import re
from typing import Any

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from tests.conftest import bearer, sign_in

from .conftest import GitRemote, repo_entry, settled


async def test_list_shows_repos_without_credentials(make_repos_app: Any, remote: GitRemote) -> None:
    head = remote.commit({"a": "1\n"}, "Update traefik")
    client, _app = await make_repos_app([repo_entry(remote.bare, poll="*/5 * * * *")])
    assert (await client.get("/api/v1/repos")).status == 401
    data = (await (await client.get("/api/v1/repos", headers=bearer("read"))).json())["repos"]
    assert len(data) == 1
    item = data[0]
    assert item["name"] == "infra" and item["url"] == str(remote.bare) and item["branch"] == "main"
    assert item["head"] == head and item["head_short"] == head[:7] and item["head_message"] == "Update traefik"
    assert item["poll"] == "*/5 * * * *" and item["last_status"] == "succeeded" and item["last_error"] is None
    assert item["last_trigger"] == "startup" and item["last_sync"] > 0 and item["auth"] == "local"


async def test_sync_route_needs_deploy_and_is_audited(make_repos_app: Any, remote: GitRemote) -> None:
    client, app = await make_repos_app([repo_entry(remote.bare)])
    denied = await client.post("/api/v1/repos/infra/sync", headers=bearer("read"))
    assert denied.status == 403
    missing = await client.post("/api/v1/repos/nope/sync", headers=bearer("deploy"))
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    new = remote.commit({"b": "1\n"}, "Via the API")
    resp = await client.post("/api/v1/repos/infra/sync", headers=bearer("deploy"))
    assert resp.status == 202
    run_id = (await resp.json())["run_id"]
    await settled(app)
    run = await app.runs.get(run_id)
    assert run["trigger"] == "api" and run["status"] == "succeeded"
    assert run["reason"] == f"API sync by t-deploy found 1 new commit: {new[:7]} Via the API"
    await app.store.flush()
    audit = await app.store.fetchall("SELECT * FROM audit WHERE action = 'repo.sync'")
    assert [(a["actor"], a["target"]) for a in audit] == [(run["actor"], "infra")]
    assert run["actor"] and "t-deploy" in run["actor"]


async def test_ui_page_and_sync_now_button(make_repos_app: Any, remote: GitRemote) -> None:
    client, app = await make_repos_app([repo_entry(remote.bare)])
    csrf = await sign_in(client)
    page = await (await client.get("/repos")).text()
    assert '<a href="/repos"' in page and "infra" in page and str(remote.bare) in page
    assert re.search(r'<form method="post" action="/repos/infra/sync">', page)
    assert f'name="csrf_token" value="{csrf}"' in page
    forged = await client.post("/repos/infra/sync", data={}, allow_redirects=False)
    assert forged.status == 403
    new = remote.commit({"c": "1\n"}, "From the button")
    resp = await client.post("/repos/infra/sync", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    await settled(app)
    run = await app.runs.get(run_id)
    assert run["trigger"] == "manual" and run["reason"].startswith("manual sync by admin found 1 new commit")
    assert app.data[REPOS_MANAGER].get("infra").head == new
    # The fetch-based path used by scripts in the page works with the CSRF header too.
    resp = await client.post("/api/v1/repos/infra/sync", json={}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 202


async def test_sync_service(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    new = remote.commit({"d": "1\n"}, "Service")
    result = await app.services.async_call("repos.sync", {"name": "infra", "reason": "one-shot sync", "wait": True},
                                           actor="test", trigger="api")
    assert result.revision == new and result.changed and result.error is None
