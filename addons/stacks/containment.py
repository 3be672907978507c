"""Paths stay inside the stack: every file compose would read resolves (symlinks followed) inside its folder.

Compose reads some files while it loads a project (`include`, `extends.file`, `env_file`, `label_file`):
those are checked in the stack's own YAML before compose runs, because the resolved model no longer
names them (`env_file` and `label_file` are read into `environment` and `labels`). The rest
(`build.context`, `build.dockerfile`, `build.additional_contexts`, `build.ssh`, `configs`/`secrets`
`file:`) is checked in the resolved model, where compose has made every path absolute.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .policy import Violation

RULE = "paths"
HOW = "keep the file inside the stack's folder in git: compose may read no file outside the stack's working folder"
_HOW_VARIABLE = "write the path literally: Dockmaster checks it before compose reads it, so it cannot hold a variable"
_REMOTE = ("://", "git@")
_CONTEXT_SCHEMES = ("docker-image://", "service:", "target:")


# libyaml's parser when PyYAML has it: the pure-Python one costs ~10 ms per compose file.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """Safe YAML that accepts compose's own tags (`!reset`, `!override`) as plain nodes."""


def _construct_tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _construct_tagged)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def _items(value: Any) -> Iterator[str]:
    """Path strings of a key that takes a string, a list of strings or a list of `{path: ...}` mappings."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            item = item.get("path")
        if isinstance(item, str) and item:
            yield item


class _Scan:
    """Walks a stack's compose files and those they pull in, collecting paths that leave the folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.found: list[Violation] = []

    def outside(self, raw: str, bases: Iterable[Path]) -> str | None:
        """Where `raw` leads when it leaves the working folder from any base it may be read against."""
        for base in bases:
            real = os.path.realpath(os.path.join(base, raw))
            if not _inside(real, self.real_root):
                return real
        return None

    def path(self, service: str, key: str, raw: str, bases: Iterable[Path]) -> bool:
        """Check one path; True when it stays inside."""
        if "$" in raw:
            self.found.append(Violation(service, key, raw, RULE, _HOW_VARIABLE))
            return False
        if raw.startswith(_REMOTE) or "://" in raw:
            self.found.append(Violation(service, key, raw, RULE, "remote files are not read: " + HOW))
            return False
        leads = self.outside(raw, bases)
        if leads is not None:
            shown = raw if leads == raw else f"{raw} (resolves to {leads})"
            self.found.append(Violation(service, key, f"{shown} is outside the working folder", RULE, HOW))
            return False
        return True

    def run(self, files: list[str]) -> list[Violation]:
        queue: list[tuple[Path, Path]] = [(self.root / name, self.root) for name in files]
        seen: set[str] = set()
        while queue:
            path, project = queue.pop(0)
            real = os.path.realpath(path)
            if real in seen or not _inside(real, self.real_root):
                continue
            seen.add(real)
            try:
                with open(real, encoding="utf-8") as handle:
                    doc = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # compose reports a file it cannot read or parse in its own words
            if isinstance(doc, dict):
                queue.extend(self.document(doc, Path(real), project))
        return self.found

    def document(self, doc: dict[str, Any], path: Path, project: Path) -> list[tuple[Path, Path]]:
        """Check one compose file; returns the files it pulls in (include, extends) with their project folder."""
        rel = os.path.relpath(path, self.real_root)
        where = "" if rel in ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml") else \
            f" (in {rel})"
        bases = list(dict.fromkeys([path.parent, project]))
        more: list[tuple[Path, Path]] = []
        includes = doc.get("include") or []
        for entry in includes if isinstance(includes, list) else [includes]:
            spec = entry if isinstance(entry, dict) else {"path": entry}
            folder = project
            directory = spec.get("project_directory")
            if isinstance(directory, str) and self.path("", f"include.project_directory{where}", directory, bases):
                folder = Path(os.path.realpath(os.path.join(path.parent, directory)))
            for raw in _items(spec.get("env_file") or []):
                self.path("", f"include.env_file{where}", raw, [*bases, folder])
            for raw in _items(spec.get("path") or []):
                if self.path("", f"include{where}", raw, bases):
                    target = Path(os.path.join(path.parent, raw))
                    more.append((target, folder if directory else target.parent))
        services = doc.get("services") or {}
        for name, svc in (services.items() if isinstance(services, dict) else []):
            if not isinstance(svc, dict):
                continue
            extends = svc.get("extends")
            if isinstance(extends, dict) and isinstance(extends.get("file"), str) and \
                    self.path(name, f"extends.file{where}", extends["file"], bases):
                more.append((Path(os.path.join(path.parent, extends["file"])), project))
            for key in ("env_file", "label_file"):
                for raw in _items(svc.get(key) or []):
                    self.path(name, f"{key}{where}", raw, bases)
        return more


def scan_sources(root: Path, files: list[str]) -> list[Violation]:
    """Paths compose reads while loading the stack's files (include, extends, env_file, label_file); blocks."""
    return _Scan(root).run(files)


def _build_paths(build: dict[str, Any]) -> Iterator[tuple[str, str]]:
    context = build.get("context")
    if isinstance(context, str) and "://" not in context and not context.startswith("git@"):
        yield "build.context", context
        dockerfile = build.get("dockerfile")
        if isinstance(dockerfile, str):
            yield "build.dockerfile", os.path.join(context, dockerfile)
    extra = build.get("additional_contexts") or {}
    values = extra.values() if isinstance(extra, dict) else [str(v).split("=", 1)[-1] for v in extra]
    for value in values:
        text = str(value)
        if text.startswith("oci-layout://"):
            yield "build.additional_contexts", text.removeprefix("oci-layout://").split("@", 1)[0]
        elif not text.startswith(_CONTEXT_SCHEMES) and "://" not in text:
            yield "build.additional_contexts", text
    ssh = build.get("ssh") or []
    for value in ssh.values() if isinstance(ssh, dict) else [str(v).split("=", 1)[-1] for v in ssh]:
        if value and value != "default":
            yield "build.ssh", str(value)


def check_model(model: dict[str, Any], root: Path) -> list[Violation]:
    """Paths in a resolved compose model that lead outside the working folder `root`; blocks (resolves links)."""
    scan = _Scan(root)
    for name, svc in sorted((model.get("services") or {}).items()):
        svc = svc or {}
        build = svc.get("build")
        if isinstance(build, dict):
            for key, raw in _build_paths(build):
                scan.path(name, key, raw, [root])
        for key in ("env_file", "label_file"):
            for raw in _items(svc.get(key) or []):
                scan.path(name, key, raw, [root])
    for kind in ("configs", "secrets"):
        for name, entry in sorted((model.get(kind) or {}).items()):
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                scan.path("", f"{kind}.{name}.file", entry["file"], [root])
    return scan.found
