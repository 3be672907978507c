"""Clone, fetch, change detection, events, persisted status and coalescing of the repos addon."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from addons.repos.events import RepoSynced
from addons.repos.services import MANAGER_KEY as REPOS_MANAGER

from .conftest import GitRemote, git, repo_entry, settled, sync_runs, wait_for


async def test_startup_clones_the_tracked_branch(make_repos_app: Any, remote: GitRemote) -> None:
    first = remote.commit({"stacks/traefik/compose.yaml": "services: {}\n"}, "Add traefik")
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    runs = await settled(app)
    assert [(r["trigger"], r["status"]) for r in runs] == [("startup", "succeeded")]
    assert runs[0]["reason"] == f"startup: cloned main at {first[:7]} Add traefik"
    assert runs[0]["details"]["revision"] == first
    repo = app.data[REPOS_MANAGER].get("infra")
    assert repo.head == first
    assert (repo.path / "stacks" / "traefik" / "compose.yaml").read_text() == "services: {}\n"
    assert repo.path == app.data_dir / "repos" / "infra"
    # Only the tracked branch is fetched, and no tags.
    refs = git(repo.path, "for-each-ref", "--format=%(refname)").splitlines()
    assert sorted(refs) == ["refs/heads/main", "refs/remotes/origin/main"]


async def test_fetch_reports_new_commits_and_fires_repo_synced(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    manager = app.data[REPOS_MANAGER]
    before = manager.get("infra").head
    events: list[RepoSynced] = []
    app.bus.async_listen(RepoSynced, events.append)

    remote.commit({"stacks/a/compose.yaml": "a\n"}, "Add a")
    remote.commit({"stacks/b/compose.yaml": "b\n"}, "Add b")
    newest = remote.commit({"stacks/traefik/compose.yaml": "t\n"}, "Update traefik")
    result = await manager.async_sync("infra", trigger="poll", reason="poll")
    assert result.error is None and result.changed and result.previous == before and result.revision == newest
    run = await app.runs.get(result.run_id)
    assert run["status"] == "succeeded"
    assert run["reason"] == f"poll found 3 new commits: {newest[:7]} Update traefik"
    assert run["details"]["new_commits"] == 3

    repo = manager.get("infra")
    changed = await repo.async_changed_paths(before, newest)
    assert changed == ["stacks/a/compose.yaml", "stacks/b/compose.yaml", "stacks/traefik/compose.yaml"]
    everything = await repo.async_changed_paths(None, newest)
    assert "README.md" in everything and len(everything) == 4
    commit = await repo.async_commit(newest)
    assert commit.sha == newest and commit.message == "Update traefik" and commit.short == newest[:7]

    again = await manager.async_sync("infra", trigger="poll", reason="poll")
    assert not again.changed and again.revision == newest
    assert (await app.runs.get(again.run_id))["reason"] == "poll: no change"
    await wait_for(lambda: len(events) == 2)
    assert [(e.repo, e.revision, e.previous, e.changed) for e in events] == [
        ("infra", newest, before, True), ("infra", newest, newest, False)
    ]


async def test_deleted_files_count_as_changed(make_repos_app: Any, remote: GitRemote) -> None:
    remote.commit({"stacks/a/compose.yaml": "a\n", "stacks/a/old.env": "X=1\n"}, "Add a")
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    before = repo.head
    new = remote.commit({"stacks/a/old.env": None}, "Drop old env")
    await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual sync by admin")
    assert await repo.async_changed_paths(before, new) == ["stacks/a/old.env"]


async def test_commits_between_filters_by_path_newest_first_and_counts(make_repos_app: Any,
                                                                      remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    manager = app.data[REPOS_MANAGER]
    repo = manager.get("infra")
    before = repo.head
    subjects = [f"web change {i}" for i in range(5)]
    for i, subject in enumerate(subjects):
        remote.commit({"stacks/web/compose.yaml": f"v{i}\n"}, f"{subject}\n\nwith a body line")
        remote.commit({"stacks/db/compose.yaml": f"v{i}\n"}, f"db change {i}")
    newest = remote.commit({"stacks/webby/x": "1\n"}, "Not the web folder")
    await manager.async_sync("infra", trigger="manual", reason="manual")
    found = await repo.async_commits_between(before, newest, path="stacks/web", limit=3)
    assert found.total == 5
    assert [c.subject for c in found.commits] == subjects[::-1][:3]
    assert found.commits[0].message == "web change 4\n\nwith a body line"
    assert all(len(c.sha) == 40 and c.sha.startswith(c.short) and c.time > 0 for c in found.commits)
    # Without a start (never deployed), every commit up to `new` that touches the folder.
    assert (await repo.async_commits_between(None, newest, path="stacks/web", limit=0)).total == 5
    assert (await repo.async_commits_between(before, newest, limit=50)).total == 11
    assert (await repo.async_commits_between(newest, newest, path="stacks/web")).commits == ()


async def test_status_survives_a_restart(make_repos_app: Any, remote: GitRemote, make_client: Any) -> None:
    client, app = await make_repos_app([repo_entry(remote.bare)])
    head = app.data[REPOS_MANAGER].get("infra").head
    await client.close()
    stored = remote.commit({"x": "1\n"}, "Later commit")

    _client2, app2 = await make_repos_app([repo_entry(remote.bare)], wait=False)
    # Before the startup sync ends, the stored revision is already known.
    assert app2.data[REPOS_MANAGER].get("infra").head in (head, stored)
    await settled(app2)
    repo = app2.data[REPOS_MANAGER].get("infra")
    assert repo.head == stored
    runs = await sync_runs(app2)
    assert runs[-1]["reason"] == f"startup found 1 new commit: {stored[:7]} Later commit"


async def test_ten_triggers_during_a_fetch_make_two_fetches(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    manager = app.data[REPOS_MANAGER]
    repo = manager.get("infra")
    fetches = 0
    gate = threading.Event()
    original = repo.clone.sync

    def slow_sync(previous: str | None) -> Any:
        # Hold the first fetch open so every trigger below arrives while it runs.
        nonlocal fetches
        fetches += 1
        gate.wait(30)
        return original(previous)

    repo.clone.sync = slow_sync
    first = await manager.async_request_sync("infra", trigger="manual", reason="first")
    await wait_for(lambda: fetches == 1)
    newest = ""
    ids = []
    for i in range(10):
        newest = remote.commit({f"f{i}": f"{i}\n"}, f"Commit {i}")
        ids.append(await manager.async_request_sync("infra", trigger="webhook", reason=f"push {i}"))
    assert len(set(ids)) == 1 and ids[0] != first
    gate.set()
    runs = await settled(app)
    assert fetches == 2
    trailing = await app.runs.get(ids[0])
    assert trailing["status"] == "succeeded" and trailing["details"]["revision"] == newest
    assert repo.head == newest
    assert [r["id"] for r in runs[-2:]] == [first, ids[0]]


async def test_poll_job_shares_the_sync_key(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare, poll="*/5 * * * *")])
    job = app.scheduler.jobs["repo-poll:infra"]
    assert job.key == "repo:infra" and job.cron == "*/5 * * * *"
    new = remote.commit({"p": "1\n"}, "Polled")
    result = await job.factory()
    assert result.revision == new
    run = await app.runs.get(result.run_id)
    assert run["trigger"] == "poll" and run["reason"] == f"poll found 1 new commit: {new[:7]} Polled"
    # A poll arriving while a webhook's run waits joins that run instead of making another.
    manager = app.data[REPOS_MANAGER]
    gate, entered = threading.Event(), threading.Event()
    original = manager.get("infra").clone.sync

    def held(previous: str | None) -> Any:
        entered.set()
        gate.wait(30)
        return original(previous)

    manager.get("infra").clone.sync = held
    await manager.async_request_sync("infra", trigger="manual", reason="busy")
    await wait_for(entered.is_set)
    queued = await manager.async_request_sync("infra", trigger="webhook", reason="push")
    submission = app.scheduler.submit("repo:infra", job.factory)
    assert submission.outcome == "coalesced"
    gate.set()
    folded = await submission.future
    assert folded.run_id == queued
    runs = await settled(app)
    assert [r["trigger"] for r in runs] == ["startup", "poll", "manual", "webhook"]


async def test_relative_local_path_is_read_from_the_config_folder(
    make_repos_app: Any, remote: GitRemote, tmp_path: Any
) -> None:
    relative = "./" + str(remote.bare.relative_to(tmp_path))
    _client, app = await make_repos_app([repo_entry(relative, poll="*/2 * * * *", fetch_timeout="60s")])
    repo = app.data[REPOS_MANAGER].get("infra")
    assert repo.url == str(remote.bare) and repo.head == remote.head


async def test_concurrent_requests_share_one_queued_run(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    manager = app.data[REPOS_MANAGER]
    newest = remote.commit({"stacks/a/compose.yaml": "a\n"}, "Add a")
    # Requests racing each other (pushes, a UI click, a poll) while no run is queued yet.
    results = await asyncio.wait_for(asyncio.gather(
        *(manager.async_sync("infra", trigger="webhook", reason=f"push {i}") for i in range(5))), 15)
    assert {r.revision for r in results} == {newest}
    # The first may already be fetching when the others arrive: at most one more run follows it.
    assert len({r.run_id for r in results}) <= 2
    runs = await settled(app)
    assert {r["status"] for r in runs} == {"succeeded"} and len(runs) <= 3  # the startup sync too
