"""The working folder on real files: tracked files follow the revision, everything else is left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from addons.stacks.workdir import (
    MANIFEST,
    TRACKED,
    WorkdirConflict,
    WorkingFolder,
    build_manifest,
    read_manifest,
    write_manifest,
)


def _snapshot(path: Path, files: dict[str, str]) -> dict[str, str]:
    """A rendered snapshot with a manifest; returns the manifest."""
    path.mkdir(parents=True)
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    manifest = build_manifest(path)
    write_manifest(path, manifest)
    return manifest


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_revisions_replace_tracked_files_and_never_touch_untracked_ones(tmp_path: Path) -> None:
    folder = WorkingFolder(tmp_path / "stack")
    one = tmp_path / "snap1"
    m1 = _snapshot(one, {"compose.yaml": "v1", "conf/app.ini": "a=1", "conf/old.ini": "x", "gone/only.txt": "o"})
    report = folder.sync(one, m1)
    assert sorted(report.written) == ["compose.yaml", "conf/app.ini", "conf/old.ini", "gone/only.txt"]
    # What the containers write: beside and between tracked files.
    (folder.root / "data").mkdir()
    (folder.root / "data" / "db.sqlite").write_text("rows")
    (folder.root / "conf" / "state.json").write_text("{}")

    two = tmp_path / "snap2"
    m2 = _snapshot(two, {"compose.yaml": "v2", "conf/app.ini": "a=1", "new/file.txt": "n"})
    report = folder.sync(two, m2)

    assert sorted(report.written) == ["compose.yaml", "new/file.txt"]
    assert sorted(report.removed) == ["conf/old.ini", "gone/only.txt"]
    assert report.unchanged == 1
    assert _tree(folder.root) == {"compose.yaml": "v2", "conf/app.ini": "a=1", "conf/state.json": "{}",
                                  "data/db.sqlite": "rows", "new/file.txt": "n"}
    assert not (folder.root / "gone").exists()  # emptied by the removal: removed too
    assert json.loads((folder.base / TRACKED).read_text()) == m2

    # Back to the first revision (a rollback): the data is still there, untouched.
    folder.sync(one, m1)
    assert _tree(folder.root)["data/db.sqlite"] == "rows"
    assert _tree(folder.root)["conf/state.json"] == "{}"
    assert not (folder.root / "new").exists()


def test_a_tracked_file_changed_in_place_is_written_again(tmp_path: Path) -> None:
    folder = WorkingFolder(tmp_path / "stack")
    snap = tmp_path / "snap"
    manifest = _snapshot(snap, {"compose.yaml": "v1"})
    folder.sync(snap, manifest)
    (folder.root / "compose.yaml").write_text("edited by hand")
    assert folder.sync(snap, manifest).written == ["compose.yaml"]
    assert (folder.root / "compose.yaml").read_text() == "v1"


@pytest.mark.parametrize(("prepare", "named"), [
    (lambda root: (root / "app.ini").write_text("written by the app"), "app.ini exists and is not tracked"),
    (lambda root: (root / "app.ini").mkdir(), "app.ini is a folder"),
    (lambda root: (root / "conf").symlink_to("/etc"), "conf is a symlink, not a folder"),
    (lambda root: (root / "conf").write_text("a file"), "conf is a file, not a folder"),
])
def test_an_untracked_path_in_the_way_fails_and_nothing_is_written(tmp_path: Path, prepare: object,
                                                                   named: str) -> None:
    folder = WorkingFolder(tmp_path / "stack")
    one = tmp_path / "snap1"
    folder.sync(one, _snapshot(one, {"compose.yaml": "v1"}))
    assert callable(prepare)
    prepare(folder.root)
    before = {p: p.lstat().st_mtime_ns for p in folder.root.rglob("*")}
    two = tmp_path / "snap2"
    m2 = _snapshot(two, {"compose.yaml": "v2", "app.ini": "tracked now", "conf/x.ini": "x"})

    with pytest.raises(WorkdirConflict) as err:
        folder.sync(two, m2)

    assert named in str(err.value)
    assert "never overwrites untracked files" in str(err.value)
    assert (folder.root / "compose.yaml").read_text() == "v1"
    assert {p: p.lstat().st_mtime_ns for p in folder.root.rglob("*")} == before
    assert json.loads((folder.base / TRACKED).read_text()) == build_manifest(one)
    assert not Path("/etc/x.ini").exists()


def test_an_untracked_file_with_the_same_content_is_taken_over(tmp_path: Path) -> None:
    folder = WorkingFolder(tmp_path / "stack")
    folder.root.mkdir(parents=True)
    (folder.root / "compose.yaml").write_text("v1")
    snap = tmp_path / "snap"
    report = folder.sync(snap, _snapshot(snap, {"compose.yaml": "v1"}))
    assert report.unchanged == 1 and report.written == []


def test_symlinks_and_modes_are_written_as_tracked(tmp_path: Path) -> None:
    folder = WorkingFolder(tmp_path / "stack")
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "run.sh").write_text("#!/bin/sh\n")
    (snap / "run.sh").chmod(0o755)
    (snap / "link.sh").symlink_to("run.sh")
    manifest = build_manifest(snap)
    folder.sync(snap, manifest)
    assert os.readlink(folder.root / "link.sh") == "run.sh"
    assert (folder.root / "run.sh").stat().st_mode & 0o777 == 0o755


def test_an_old_snapshot_gives_its_data_to_the_working_folder(tmp_path: Path) -> None:
    legacy = tmp_path / "snapshots" / "7-abc1234"
    legacy.mkdir(parents=True)
    (legacy / "compose.yaml").write_text("v1")
    (legacy / "conf").mkdir()
    (legacy / "conf" / "app.ini").write_text("tracked")
    (legacy / "conf" / "cache.db").write_text("untracked in a tracked folder")
    (legacy / "data").mkdir()
    (legacy / "data" / "log").write_text("line 1\n")
    (legacy / ".dockmaster.labels.yaml").write_text("labels")
    folder = WorkingFolder(tmp_path / "stack")

    moved = folder.adopt_legacy(legacy, {"compose.yaml", "conf/app.ini"})

    assert sorted(moved) == ["conf/cache.db", "data"]
    assert (folder.root / "data" / "log").read_text() == "line 1\n"
    assert (folder.root / "conf" / "cache.db").read_text() == "untracked in a tracked folder"
    # Containers that start again before the next deploy still find their data through a link.
    assert (legacy / "data").is_symlink() and (legacy / "data" / "log").read_text() == "line 1\n"
    assert read_manifest(legacy) == {k: v for k, v in build_manifest(legacy).items() if k in
                                     ("compose.yaml", "conf/app.ini")}
    assert (legacy / MANIFEST).exists()
