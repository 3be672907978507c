"""Check and reload: problems change nothing; changed addons are set up again; schedules replaced; audited."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import yaml

from addons.backup.engine import ENGINE_KEY as BACKUP
from addons.notify.const import ENGINE_KEY as NOTIFY
from appliance.auth import hash_password
from appliance.keys import APPLIANCE_KEY, AUTH_KEY
from appliance.reload import footprint
from tests.conftest import ADMIN_PASSWORD, bearer, sign_in


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _listener_count(app: Any) -> int:
    return sum(len(v) for v in app.bus._listeners.values())


async def test_a_broken_edit_is_refused_with_file_and_line_and_changes_nothing(make_client: Any,
                                                                             tmp_path: Path) -> None:
    client = await make_client({"backup": {"cron": "0 4 * * *"}, "windows": {"nightly": {"cron": "0 2 * * *",
                                                                                          "duration": "3h"}}})
    app = client.app[APPLIANCE_KEY]
    before = (dict(app.conf), list(app.loaded_addons), app.scheduler.jobs["backup"], _listener_count(app))
    path = tmp_path / "config.yaml"
    text = path.read_text().replace("cron: 0 4 * * *", "cron: every morning").replace("duration: 3h",
                                                                                      "duration: forever")
    path.write_text(text)
    resp = await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "config_error" and "nothing was changed" in error["message"]
    issues = {i["path"]: i for i in error["details"]["issues"]}
    assert set(issues) == {"backup.cron", "windows.nightly.duration"}
    lines = text.splitlines()
    for issue in issues.values():
        assert issue["file"] == "config.yaml" and issue["line"] >= 1
    assert "every morning" in lines[issues["backup.cron"]["line"] - 1]
    assert "forever" in lines[issues["windows.nightly.duration"]["line"] - 1]
    assert (dict(app.conf), list(app.loaded_addons), app.scheduler.jobs["backup"], _listener_count(app)) == before
    await app.store.flush()
    rows = await app.store.fetchall("SELECT actor, outcome FROM audit WHERE action = 'config_reload'")
    assert [(r["actor"], r["outcome"]) for r in rows] == [("token:t-admin", "refused")]


async def test_changed_addons_are_reloaded_schedules_replaced_and_the_rest_untouched(make_client: Any,
                                                                                   tmp_path: Path) -> None:
    client = await make_client({"backup": {"cron": "0 4 * * *", "keep": 2}, "notify": []})
    app = client.app[APPLIANCE_KEY]
    old_job = app.scheduler.jobs["backup"]
    old_engine, notify_engine = app.data[BACKUP], app.data[NOTIFY]
    listeners = _listener_count(app)
    _edit(tmp_path / "config.yaml", lambda d: d["backup"].update(cron="30 5 * * *", keep=4))
    resp = await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["ok"] and body["reloaded"] == ["backup"] and body["restart_required"] == []
    new_job = app.scheduler.jobs["backup"]
    assert new_job is not old_job and new_job.cron == "30 5 * * *"
    await asyncio.sleep(0)
    assert old_job._task is not None and old_job._task.cancelled()
    assert app.data[BACKUP] is not old_engine and app.data[BACKUP].keep == 4
    assert app.data[NOTIFY] is notify_engine  # unchanged: not touched
    assert _listener_count(app) == listeners
    assert sorted(app.loaded_addons).count("backup") == 1
    assert [e.title for e in app.ui.nav].count("Backups") == 1
    assert len([r for r in app.api.routes if r.path == "/api/v1/backups"]) == 2  # GET and POST, not doubled
    # The reloaded addon serves through the routes installed at start.
    listing = await (await client.get("/api/v1/backups", headers=bearer("admin"))).json()
    assert listing["keep"] == 4
    await app.store.flush()
    rows = await app.store.fetchall("SELECT actor, target, outcome FROM audit WHERE action = 'config_reload'")
    assert [(r["actor"], r["target"], r["outcome"]) for r in rows] == [("token:t-admin", "backup", "ok")]


async def test_an_addon_removed_then_added_back(make_client: Any, tmp_path: Path) -> None:
    client = await make_client({"backup": {"cron": "0 4 * * *"}})
    app = client.app[APPLIANCE_KEY]
    _edit(tmp_path / "config.yaml", lambda d: d.pop("backup"))
    body = await (await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))).json()
    assert body["removed"] == ["backup"] and "backup" not in app.loaded_addons
    assert "backup" not in app.scheduler.jobs and "backup.create" not in app.services
    _edit(tmp_path / "config.yaml", lambda d: d.update(backup={"cron": "0 6 * * *"}))
    body = await (await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))).json()
    assert body["added"] == ["backup"] and app.scheduler.jobs["backup"].cron == "0 6 * * *"
    assert footprint(app, "backup") is not None and "backup.create" in app.services


async def test_a_new_addon_without_routes_at_start_says_it_needs_a_restart_for_its_pages(
        make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    _edit(tmp_path / "config.yaml", lambda d: d.update(backup={"keep": 3}))
    body = await (await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))).json()
    assert body["added"] == ["backup"] and body["restart_required"] == ["backup (new pages and API routes)"]
    assert "backup.create" in app.services  # the service and schedule work now
    assert "Backups" not in [e.title for e in app.ui.nav]  # no link to a page that is not served yet


async def test_running_runs_finish_first_or_nothing_changes(make_client: Any, tmp_path: Path) -> None:
    client = await make_client({"backup": {"keep": 2}})
    app = client.app[APPLIANCE_KEY]
    run = await app.runs.create("deploy", "traefik", trigger="manual", reason="in flight", status="running")
    _edit(tmp_path / "config.yaml", lambda d: d["backup"].update(keep=5))
    resp = await client.post("/api/v1/config/reload", json={"wait": 0.3}, headers=bearer("admin"))
    assert resp.status == 409 and (await resp.json())["error"]["details"]["running"] == [run.id]
    assert app.data[BACKUP].keep == 2

    async def finish_soon() -> None:
        await asyncio.sleep(0.5)
        await app.runs.finish(run, "succeeded")

    task = asyncio.create_task(finish_soon())
    resp = await client.post("/api/v1/config/reload", json={"wait": 10}, headers=bearer("admin"))
    await task
    assert resp.status == 200 and app.data[BACKUP].keep == 5
    assert (await app.runs.get(run.id))["status"] == "succeeded"  # the run was not cut short


async def test_users_added_and_removed_by_a_reload(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    await sign_in(client)
    path = tmp_path / "config.yaml"
    new_hash = hash_password("another password")
    _edit(path, lambda d: d["auth"].update(users=[{"username": "second", "password_hash": new_hash}]))
    body = await (await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))).json()
    assert body["auth"] is True and body["reloaded"] == []
    assert (await client.get("/", allow_redirects=False)).status == 401  # admin's session ended with the user
    resp = await client.post("/login", data={"username": "second", "password": "another password"},
                             allow_redirects=False)
    assert resp.status == 303
    resp = await client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD},
                             allow_redirects=False)
    assert resp.status == 401
    assert set(client.app[AUTH_KEY].users) == {"second"}


async def test_core_changes_that_need_a_restart_are_named(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    _edit(tmp_path / "config.yaml", lambda d: d["http"].update(port=8100))
    body = await (await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))).json()
    assert body["restart_required"] == ["http"]
    assert client.app[APPLIANCE_KEY].http_conf["port"] == 8099


async def test_only_admin_may_reload(make_client: Any) -> None:
    client = await make_client()
    for scope in ("read", "deploy"):
        assert (await client.post("/api/v1/config/reload", json={}, headers=bearer(scope))).status == 403


async def test_sighup_reloads(make_client: Any, tmp_path: Path) -> None:
    client = await make_client({"backup": {"keep": 2}})
    app = client.app[APPLIANCE_KEY]
    _edit(tmp_path / "config.yaml", lambda d: d["backup"].update(keep=6))
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if app.data.get(BACKUP) is not None and app.data[BACKUP].keep == 6:
            break
        await asyncio.sleep(0.05)
    assert app.data[BACKUP].keep == 6
    await app.store.flush()
    rows = await app.store.fetchall("SELECT actor FROM audit WHERE action = 'config_reload'")
    assert [r["actor"] for r in rows] == ["signal:SIGHUP"]
