"""Robustness: stale locks, half-done clones, unreachable remotes, deleted branches, bounded packs."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from addons.repos.clone import PACK_LIMIT, git_process_in
from addons.repos.events import RepoSynced
from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from tests.conftest import bearer

from .conftest import GitRemote, git, repo_entry, settled


async def test_stale_index_lock_is_removed(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    (repo.path / ".git" / "index.lock").write_text("")
    (repo.path / ".git" / "refs" / "remotes" / "origin" / "main.lock").write_text("")
    new = remote.commit({"a": "1\n"}, "After a crash")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual sync by admin")
    run = await app.runs.get(result.run_id)
    assert result.error is None and repo.head == new, run
    assert "removed a stale .git/index.lock" in run["log"]
    assert not (repo.path / ".git" / "index.lock").exists()
    assert (repo.path / "a").read_text() == "1\n"  # the checkout, which needs the index, worked


async def test_lock_held_by_a_live_git_process_is_kept(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    before = repo.head
    lock = repo.path / ".git" / "index.lock"
    lock.write_text("")
    # A git process working in the clone (waiting on stdin) stands for a person running git there.
    holder = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo.path, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    try:
        remote.commit({"b": "1\n"}, "While busy")
        result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual")
        assert result.error == ".git/index.lock is held by a running git process; the sync will be retried later"
        assert repo.head == before and lock.exists()
    finally:
        holder.communicate(b"")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual")
    assert result.error is None and repo.head == remote.head


async def test_half_done_clone_is_removed_and_cloned_again(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    # An interrupted clone: a repository with objects but no valid HEAD.
    shutil.rmtree(repo.path)
    git(repo.path.parent, "init", "-q", str(repo.path))
    (repo.path / "stray-file").write_text("partial\n")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual")
    run = await app.runs.get(result.run_id)
    assert result.error is None, run
    assert "removed a half-done clone (no valid HEAD); cloning again" in run["log"]
    assert git(repo.path, "rev-parse", "HEAD") == remote.head
    assert not (repo.path / "stray-file").exists()

    # A folder that is not a clone at all is treated the same way.
    shutil.rmtree(repo.path)
    repo.path.mkdir()
    (repo.path / "junk").write_text("x")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="manual")
    assert result.error is None and (repo.path / "README.md").exists()


async def test_unreachable_remote_fails_with_cause_and_keeps_head(
    make_repos_app: Any, remote: GitRemote, git_daemon: Any
) -> None:
    url = git_daemon.url_for(remote.bare)
    _client, app = await make_repos_app([repo_entry(url)])
    repo = app.data[REPOS_MANAGER].get("infra")
    assert repo.head == remote.head
    before = repo.head
    events: list[RepoSynced] = []
    app.bus.async_listen(RepoSynced, events.append)
    git_daemon.stop()
    remote.commit({"c": "1\n"}, "Not fetched")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="poll")
    run = await app.runs.get(result.run_id)
    assert run["status"] == "failed"
    assert run["error"] == f"remote unreachable: {url} (connection refused)"
    assert run["reason"] == "poll: fetch failed"
    assert result.error == run["error"] and result.revision == before and not result.changed
    assert repo.head == before and git(repo.path, "rev-parse", "HEAD") == before
    assert events == []
    listed = (await (await _client.get("/api/v1/repos", headers=bearer("read"))).json())["repos"][0]
    assert listed["last_status"] == "failed" and listed["head"] == before
    assert listed["last_error"].startswith("remote unreachable")


async def test_deleted_branch_fails_and_keeps_head(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    before = repo.head
    git(remote.bare, "update-ref", "-d", "refs/heads/main")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="poll")
    assert result.error == f"branch 'main' does not exist on the remote {remote.bare} (deleted or renamed?)"
    assert repo.head == before and (repo.path / "README.md").exists()


async def test_missing_local_repo_fails_in_words(make_repos_app: Any, tmp_path: Path) -> None:
    _client, app = await make_repos_app([repo_entry(tmp_path / "nowhere.git")])
    runs = await settled(app)
    assert runs[0]["status"] == "failed"
    assert runs[0]["error"] == f"no git repository at {tmp_path / 'nowhere.git'}"
    assert app.data[REPOS_MANAGER].get("infra").head is None


async def test_pack_count_stays_bounded(make_repos_app: Any, remote: GitRemote) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    # Keep every fetched pack as it arrives (as large fetches do), the worst case for pack count.
    git(repo.path, "config", "fetch.unpackLimit", "1")
    counts = []
    for i in range(PACK_LIMIT + 6):
        remote.commit({f"n{i}": f"{i}\n"}, f"Commit {i}")
        result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="poll")
        assert result.error is None
        counts.append(repo.clone.pack_count())
    assert max(counts) <= PACK_LIMIT + 1
    assert counts[-1] < PACK_LIMIT + 6


@pytest.fixture
def small_repos_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted where the app keeps its clones (the store stays on the normal disk)."""
    target = tmp_path / "data" / "repos"
    target.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(target)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=True)


async def test_disk_full_fails_in_words_and_keeps_the_clone(
    small_repos_disk: Path, make_repos_app: Any, remote: GitRemote
) -> None:
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")
    before = repo.head
    assert before == remote.head
    (remote.work / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # incompressible, over the disk size
    git(remote.work, "add", "big.bin")
    remote.commit({}, "Add a large file")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="poll")
    assert result.error == "cannot fetch: the disk is full (no space left on device)"
    assert repo.head == before
    assert git(repo.path, "rev-parse", "HEAD") == before  # the clone is still there, at the old revision
    assert await repo.async_read_file(before, "README.md") == b"hello\n"


async def test_hung_remote_is_killed_after_fetch_timeout(make_repos_app: Any) -> None:
    # A server that accepts the connection and then never answers.
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"git://127.0.0.1:{port}/infra.git"
    try:
        started = time.monotonic()
        _client, app = await make_repos_app([repo_entry(url, fetch_timeout="2s")])
        runs = await settled(app)
        assert time.monotonic() - started < 15
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert runs[-1]["status"] == "failed"
    assert runs[-1]["error"] == f"fetch timed out after 2s (remote {url} too slow or not answering)"
    assert git_process_in(app.data[REPOS_MANAGER].get("infra").path) is False  # the hung git was killed
