"""Safe reads of the committed tree: export, read, has_path, list_dirs and their path rules."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from addons.repos import tree
from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from addons.repos.tree import extract_checked
from appliance.errors import NotFound, ValidationFailed

from .conftest import GitRemote, repo_entry


@pytest.fixture
async def synced(make_repos_app: Any, remote: GitRemote) -> Any:
    """A repo with two stacks, a shared folder and an executable script, cloned by the app."""
    remote.commit({
        "stacks/a/compose.yaml": "services: {a: {}}\n",
        "stacks/a/conf/app.ini": "x=1\n",
        "stacks/b/compose.yaml": "services: {b: {}}\n",
        "stacks/.hidden/compose.yaml": "h\n",
        "shared/base.env": "BASE=1\n",
    }, "Stacks")
    script = remote.work / "stacks" / "a" / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    remote.commit({"stacks/a/run.sh": script.read_text()}, "Script")
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    return app.data[REPOS_MANAGER].get("infra")


async def test_export_writes_the_subtree(synced: Any, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    await synced.async_export(synced.head, "stacks/a", dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "compose.yaml", "conf", "conf/app.ini", "run.sh"]
    assert (dest / "compose.yaml").read_text() == "services: {a: {}}\n"
    assert os.access(dest / "run.sh", os.X_OK)


@pytest.mark.parametrize(("subpath", "message"), [
    ("../..", "path '../..' must stay inside the repo ('..' is not allowed)"),
    ("stacks/../../etc", "path 'stacks/../../etc' must stay inside the repo ('..' is not allowed)"),
    ("/etc", "path '/etc' must be relative to the repo, not absolute"),
    ("~/x", "path '~/x' must be relative to the repo, not absolute"),
])
async def test_export_refuses_paths_leaving_the_repo(synced: Any, tmp_path: Path, subpath: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await synced.async_export(synced.head, subpath, tmp_path / "out")
    assert err.value.message == message
    assert not (tmp_path / "out").exists()


async def test_export_refuses_symlinks_leading_out(synced: Any, remote: GitRemote, tmp_path: Path) -> None:
    repos = synced.app.data[REPOS_MANAGER]
    remote.symlink("stacks/escape", "../../..", "Link out of the repo")
    remote.symlink("stacks/c/passwd", "/etc/passwd", "Absolute link")
    remote.symlink("stacks/d/up", "../../../outside", "Relative link out")
    remote.symlink("stacks/e/base.env", "../../shared/base.env", "Link to shared")
    remote.symlink("current", "stacks/b", "Link to a stack")
    await repos.async_sync("infra", trigger="manual", reason="manual")
    rev = synced.head
    cases = {
        "stacks/escape": "path 'stacks/escape' leads outside the repo through a symlink",
        "stacks/escape/etc": "path 'stacks/escape/etc' leads outside the repo through a symlink",
        "stacks/c": "path 'stacks/c': symlink stacks/c/passwd points to an absolute path (/etc/passwd)",
        "stacks/d": "path 'stacks/d': symlink stacks/d/up leads outside the repo (../../../outside)",
        "stacks/e": ("path 'stacks/e': symlink stacks/e/base.env points outside stacks/e (to shared/base.env); "
                     "only files inside the exported folder can be used"),
    }
    for subpath, message in cases.items():
        dest = tmp_path / subpath.replace("/", "_")
        with pytest.raises(ValidationFailed) as err:
            await synced.async_export(rev, subpath, dest)
        assert err.value.message == message
        assert not dest.exists() or not any(dest.iterdir())
    # A symlink that stays inside the repo is followed.
    await synced.async_export(rev, "current", tmp_path / "current")
    assert (tmp_path / "current" / "compose.yaml").read_text() == "services: {b: {}}\n"
    with pytest.raises(ValidationFailed, match="points to an absolute path"):
        await synced.async_read_file(rev, "stacks/c/passwd")
    with pytest.raises(ValidationFailed, match="leads outside the repo"):
        await synced.async_has_path(rev, "stacks/escape/etc/passwd")


async def test_read_file_has_path_and_list_dirs(synced: Any) -> None:
    rev = synced.head
    assert await synced.async_read_file(rev, "stacks/b/compose.yaml") == b"services: {b: {}}\n"
    assert await synced.async_read_file(rev, "./stacks//a/conf/app.ini") == b"x=1\n"
    with pytest.raises(NotFound):
        await synced.async_read_file(rev, "stacks/b/missing.yaml")
    with pytest.raises(ValidationFailed, match="is not a file"):
        await synced.async_read_file(rev, "stacks/b")
    with pytest.raises(ValidationFailed, match="must stay inside the repo"):
        await synced.async_read_file(rev, "../secrets.yaml")
    assert await synced.async_has_path(rev, "stacks/a/compose.yaml")
    assert await synced.async_has_path(rev, "stacks/a")
    assert not await synced.async_has_path(rev, "stacks/z")
    assert await synced.async_list_dirs(rev, "stacks/*") == ["stacks/a", "stacks/b"]
    assert await synced.async_list_dirs(rev, "stacks/.*") == ["stacks/.hidden"]
    assert await synced.async_list_dirs(rev, "*/a") == ["stacks/a"]
    assert await synced.async_list_dirs(rev, "nothing/*") == []
    with pytest.raises(ValidationFailed):
        await synced.async_list_dirs(rev, "../*")
    with pytest.raises(NotFound):
        await synced.async_read_file("0" * 40, "stacks/b/compose.yaml")
    with pytest.raises(ValidationFailed):
        await synced.async_read_file("--output=/tmp/x", "README.md")


async def test_export_failing_mid_stream_does_not_hang(
    make_repos_app: Any, remote: GitRemote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More than a pipe buffer of data still to come from git archive when extraction fails (disk full).
    remote.commit({"stacks/big/compose.yaml": "services: {}\n",
                   **{f"stacks/big/data{i}.txt": os.urandom(256 * 1024).hex() for i in range(4)}}, "Big stack")
    _client, app = await make_repos_app([repo_entry(remote.bare)])
    repo = app.data[REPOS_MANAGER].get("infra")

    def disk_full(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", disk_full)
    outcome: list[BaseException] = []

    def export() -> None:
        try:
            tree.export(repo.path, repo.head, "stacks/big", tmp_path / "out")
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=export, daemon=True)
    worker.start()
    await asyncio.to_thread(worker.join, 20)
    assert not worker.is_alive(), "export hung on a git archive nobody reads any more"
    assert isinstance(outcome[0], OSError) and outcome[0].errno == errno.ENOSPC


def _tar(members: list[tuple[str, str, str]]) -> io.BytesIO:
    """A tar of (kind, name, content-or-link-target) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value.encode()
                info.size, info.mode = len(data), 0o4777
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(("members", "refused"), [
    ([("file", "ok/a.txt", "a"), ("link", "ok/b", "a.txt")], None),
    ([("file", "../escape.txt", "x")], "would be written outside the export"),
    ([("file", "/abs.txt", "x")], "would be written outside the export"),
    ([("link", "out", "../../etc/passwd")], "leads outside the export"),
    ([("link", "abs", "/etc/passwd")], "leads outside the export"),
])
def test_exports_on_pythons_without_the_data_filter_keep_its_checks(
    tmp_path: Path, members: list[tuple[str, str, str]], refused: str | None
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with tarfile.open(fileobj=_tar(members), mode="r|") as tar:
        if refused is None:
            extract_checked(tar, dest)
            assert (dest / "ok" / "a.txt").read_text() == "a"
            assert (dest / "ok" / "a.txt").stat().st_mode & 0o7777 == 0o755  # no set-id, no group/other write
            assert (dest / "ok" / "b").readlink() == Path("a.txt")
        else:
            with pytest.raises(ValidationFailed, match=refused):
                extract_checked(tar, dest)
    assert not (tmp_path / "escape.txt").exists()
