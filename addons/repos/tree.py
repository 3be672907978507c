"""Read-only access to the committed tree of a clone, with paths that can never leave the repo.

Every function here blocks (GitPython reads objects through git): run them in an executor.
"""

from __future__ import annotations

import contextlib
import fnmatch
import posixpath
import tarfile
from pathlib import Path
from typing import Any

import git
from git.objects import Blob, Commit, Tree

from appliance.errors import NotFound, ValidationFailed

_SYMLINK = 0o120000
_MAX_HOPS = 40


def clean_relpath(relpath: str, *, what: str = "path") -> list[str]:
    """Split a repo-relative path, refusing absolute paths and `..` (the first line of defence)."""
    text = str(relpath).replace("\\", "/").strip()
    if "\x00" in text:
        raise ValidationFailed(f"{what} '{relpath}' is not a valid path")
    if text.startswith(("/", "~")):
        raise ValidationFailed(f"{what} '{relpath}' must be relative to the repo, not absolute")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValidationFailed(f"{what} '{relpath}' must stay inside the repo ('..' is not allowed)")
    return parts


def _commit(repo: git.Repo, rev: str) -> Commit:
    if not rev or rev.startswith("-"):
        raise ValidationFailed(f"invalid revision '{rev}'")
    try:
        commit = repo.commit(rev)
        commit.tree  # noqa: B018 - the commit object is read lazily; read it now to know it exists
        return commit
    except (ValueError, git.BadName, git.BadObject):
        raise NotFound(f"revision {rev[:12]} is not in the clone") from None


def _lookup(tree: Tree, parts: list[str]) -> Any:
    obj: Any = tree
    for part in parts:
        if not isinstance(obj, Tree):
            return None
        try:
            obj = obj[part]
        except KeyError:
            return None
    return obj


def resolve(commit: Commit, relpath: str, *, what: str = "path") -> tuple[str, Any]:
    """Follow symlinks inside the repo; returns the real path and its object (None when missing).

    A symlink that is absolute or climbs out of the repo raises ValidationFailed.
    """
    queue = clean_relpath(relpath, what=what)
    done: list[str] = []
    obj: Any = commit.tree
    hops = 0
    while queue:
        name = queue.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if not done:
                raise ValidationFailed(f"{what} '{relpath}' leads outside the repo through a symlink")
            done.pop()
            obj = _lookup(commit.tree, done)
            continue
        child = None
        if isinstance(obj, Tree):
            with contextlib.suppress(KeyError):
                child = obj[name]
        if child is None:
            return "/".join([*done, name, *queue]), None
        if isinstance(child, Blob) and child.mode == _SYMLINK:
            hops += 1
            link = "/".join([*done, name])
            target = child.data_stream.read().decode("utf-8", "surrogateescape")
            if hops > _MAX_HOPS:
                raise ValidationFailed(f"{what} '{relpath}': too many symlinks (a loop at {link}?)")
            if target.startswith("/"):
                raise ValidationFailed(f"{what} '{relpath}': symlink {link} points to an absolute path ({target})")
            queue = [p for p in target.split("/") if p] + queue
            continue
        done.append(name)
        obj = child
    return "/".join(done), obj


def _check_links(commit: Commit, base: str, tree: Tree, what: str) -> None:
    """Refuse a symlink in the exported folder that points outside it (or outside the repo)."""
    for item in tree.traverse():
        if not isinstance(item, Blob) or item.mode != _SYMLINK:
            continue
        link = item.path
        target = item.data_stream.read().decode("utf-8", "surrogateescape")
        if target.startswith("/"):
            raise ValidationFailed(f"{what}: symlink {link} points to an absolute path ({target})")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
        if joined == ".." or joined.startswith("../"):
            raise ValidationFailed(f"{what}: symlink {link} leads outside the repo ({target})")
        inside = not base or joined == base or joined.startswith(base + "/")
        if not inside:
            raise ValidationFailed(
                f"{what}: symlink {link} points outside {base} (to {joined}); only files inside the "
                "exported folder can be used"
            )


def changed_paths(path: Path, old: str | None, new: str) -> list[str]:
    """Paths changed between two commits (added, modified, deleted); every file when `old` is None."""
    with git.Repo(path) as repo:
        new_commit = _commit(repo, new)
        old_commit = None
        if old:
            try:
                old_commit = _commit(repo, old)
            except NotFound:
                old_commit = None  # no longer in the clone (shallow or re-cloned): all files count
        if old_commit is None:
            out = repo.git.ls_tree("-r", "-z", "--name-only", "--full-tree", new_commit.hexsha)
        else:
            out = repo.git.diff("--name-only", "-z", "--no-renames", old_commit.hexsha, new_commit.hexsha)
    return sorted(p for p in out.split("\x00") if p)


def commits_between(path: Path, old: str | None, new: str, subpath: str,
                    limit: int) -> tuple[list[dict[str, Any]], int]:
    """The newest `limit` commits of `old..new` changing `subpath` (commit_info shape), and how many there are.

    An `old` no longer in the clone (shallow or re-cloned) counts as None: every commit up to `new`.
    """
    parts = clean_relpath(subpath)
    with git.Repo(path) as repo:
        new_commit = _commit(repo, new)
        span = new_commit.hexsha
        if old:
            with contextlib.suppress(NotFound):
                span = f"{_commit(repo, old).hexsha}..{new_commit.hexsha}"
        spec = ["--", "/".join(parts)] if parts else []
        total = int(repo.git.rev_list("--count", span, *spec))
        out = repo.git.log(f"-{max(0, limit)}", "-z", "--format=%H%x1f%h%x1f%an <%ae>%x1f%ct%x1f%B", span, *spec)
    commits = []
    for record in [r for r in out.split("\x00") if r.strip()] if limit > 0 else []:
        sha, short, author, stamp, message = record.split("\x1f", 4)
        commits.append({"sha": sha.strip(), "short": short, "message": message.strip(), "author": author,
                        "time": float(stamp)})
    return commits, total


def commit_info(path: Path, rev: str) -> dict[str, Any]:
    """sha, short sha, message, author and commit time of one commit."""
    with git.Repo(path) as repo:
        commit = _commit(repo, rev)
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        return {
            "sha": commit.hexsha,
            "short": repo.git.rev_parse("--short", commit.hexsha),
            "message": message.strip(),
            "author": f"{commit.author.name} <{commit.author.email}>",
            "time": float(commit.committed_date),
        }


def read_file(path: Path, rev: str, relpath: str) -> bytes:
    """The content of a file at `rev` (symlinks followed inside the repo only)."""
    with git.Repo(path) as repo:
        commit = _commit(repo, rev)
        _real, obj = resolve(commit, relpath)
        if obj is None:
            raise NotFound(f"{relpath} does not exist at {commit.hexsha[:7]}")
        if not isinstance(obj, Blob):
            raise ValidationFailed(f"{relpath} is not a file at {commit.hexsha[:7]}")
        return bytes(obj.data_stream.read())


def has_path(path: Path, rev: str, relpath: str) -> bool:
    """True when `relpath` exists at `rev`."""
    with git.Repo(path) as repo:
        return resolve(_commit(repo, rev), relpath)[1] is not None


def list_dirs(path: Path, rev: str, pattern: str) -> list[str]:
    """Folders matching a glob such as `stacks/*` (one `*`/`?`/`[...]` per path segment)."""
    segments = clean_relpath(pattern, what="pattern")
    with git.Repo(path) as repo:
        level: list[tuple[str, Tree]] = [("", _commit(repo, rev).tree)]
        for segment in segments:
            nxt: list[tuple[str, Tree]] = []
            for prefix, tree in level:
                for child in tree.trees:
                    hidden = child.name.startswith(".") and not segment.startswith(".")
                    if not hidden and fnmatch.fnmatchcase(child.name, segment):
                        nxt.append((f"{prefix}/{child.name}" if prefix else child.name, child))
            level = nxt
    return sorted(p for p, _ in level)


def export(path: Path, rev: str, subpath: str, dest: Path) -> None:
    """Write the tree of `subpath` at `rev` into `dest` (git archive, extracted with the data filter)."""
    what = f"path '{subpath}'"
    with git.Repo(path) as repo:
        commit = _commit(repo, rev)
        real, obj = resolve(commit, subpath, what="path")
        if obj is None:
            raise ValidationFailed(f"{what} does not exist at {commit.hexsha[:7]}")
        if not isinstance(obj, Tree):
            raise ValidationFailed(f"{what} is not a folder at {commit.hexsha[:7]}")
        _check_links(commit, real, obj, what)
        dest.mkdir(parents=True, exist_ok=True)
        treeish = f"{commit.hexsha}:{real}" if real else commit.hexsha
        proc = repo.git.archive("--format=tar", treeish, as_process=True)
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                # The data filter is the second line of defence: no absolute or escaping member.
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(dest, filter="data")
                else:
                    extract_checked(tar, dest)
        except BaseException as err:
            # Extraction stopped (disk full, refused member) with output still to come: git would
            # block on the full pipe forever, and so would the wait. Stop it first.
            with contextlib.suppress(OSError):
                proc.proc.kill()
            with contextlib.suppress(git.GitCommandError):
                proc.wait()
            if isinstance(err, getattr(tarfile, "FilterError", ValidationFailed)):
                raise ValidationFailed(f"{what}: {err}") from None
            raise
        proc.wait()


def extract_checked(tar: tarfile.TarFile, dest: Path) -> None:
    """The data filter's checks for Pythons before 3.11.4 (Debian 12's 3.11.2 among them).

    Only files, folders and links whose names and link targets stay inside `dest` are written,
    with permission bits cut to rwx for the owner and rx for others (no set-id bits).
    """
    base = dest.resolve()
    for member in tar:
        target = (base / member.name).resolve()
        if member.name.startswith("/") or (target != base and base not in target.parents):
            raise ValidationFailed(f"archive member {member.name!r} would be written outside the export")
        if member.issym() or member.islnk():
            origin = target.parent if member.issym() else base
            pointed = (origin / member.linkname).resolve()
            if member.linkname.startswith("/") or (pointed != base and base not in pointed.parents):
                raise ValidationFailed(f"archive link {member.name!r} leads outside the export")
        elif not (member.isfile() or member.isdir()):
            raise ValidationFailed(f"archive member {member.name!r} is not a file, folder or link")
        member.mode &= 0o755
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        tar.extract(member, base, set_attrs=not member.issym())
