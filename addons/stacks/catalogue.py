"""The stack catalogue: stacks from the config and from `discover` globs, with the problems that keep some out."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from typing import Any

from addons.repos.contract import RepoCatalog
from appliance.errors import NotFound

from .models import StackSpec, slug_from_folder

_LOGGER = logging.getLogger(__name__)


class Catalogue:
    """Every stack spec: explicit ones, and what each repo's `discover` globs find at its revision."""

    def __init__(self, conf: dict[str, Any]) -> None:
        """Build the explicit specs from the validated `stacks:` block; discovery runs per repo revision."""
        self.conf = conf
        self.explicit = {c["name"]: StackSpec.from_conf(c) for c in conf["stacks"]}
        self.discovered: dict[str, dict[str, StackSpec]] = {}
        self.discover_errors: list[str] = []
        self.clashes: dict[str, str] = {}

    def check_references(self, repos: RepoCatalog, has_window: Callable[[str], bool],
                         engines: list[str]) -> list[str]:
        """Problems with repo, window and engine names the config refers to."""
        problems = []
        entries = [(f"stack {s.name}", s.repo, s.window, s.engine) for s in self.explicit.values()]
        entries += [(f"discover {d['path']}", d["repo"], d.get("window"), d.get("engine", "local"))
                    for d in self.conf["discover"]]
        for what, repo, window, engine in entries:
            if repo not in repos.names:
                problems.append(f"{what}: no repo named '{repo}' (known: {', '.join(sorted(repos.names)) or 'none'})")
            if window and not has_window(window):
                problems.append(f"{what}: no maintenance window named '{window}'")
            if engine not in engines:
                problems.append(f"{what}: no engine named '{engine}' (known: {', '.join(engines)}; add it under "
                                "engines:)")
        return problems

    def specs(self) -> dict[str, StackSpec]:
        """Every stack: discovered ones first, explicit ones override a discovered name."""
        merged: dict[str, StackSpec] = {}
        for found in self.discovered.values():
            merged.update(found)
        merged.update(self.explicit)
        for name in self.clashes:
            merged.pop(name, None)
        return dict(sorted(merged.items()))

    def problems(self) -> list[str]:
        """Discovery problems a person must fix (two folders, or two repos, making one stack name)."""
        return [*self.discover_errors, *self.clashes.values()]

    def _find_clashes(self) -> dict[str, str]:
        """Names made by stacks of different repos: neither is deployed, so none silently replaces another."""
        sources: dict[str, list[StackSpec]] = {}
        for found in self.discovered.values():
            for name, spec in found.items():
                sources.setdefault(name, []).append(spec)
        clashes = {}
        for name, specs in sources.items():
            if name in self.explicit:
                specs = [*specs, self.explicit[name]]
            if len({s.repo for s in specs}) > 1:
                made_by = " and ".join(sorted(f"{s.repo}:{s.path}{' (discovered)' if s.discovered else ''}"
                                              for s in specs))
                clashes[name] = (f"stack name '{name}' is made by {made_by}; neither is deployed until one is "
                                 "renamed or excluded")
        return clashes

    def spec(self, name: str) -> StackSpec:
        """One stack's spec; raises NotFound."""
        found = self.specs().get(name)
        if found is None:
            raise NotFound(f"no stack named '{name}'")
        return found

    async def async_discover(self, repos: RepoCatalog, repo_name: str, revision: str) -> None:
        """Re-read every `discover` glob of a repo at a revision."""
        repo = repos.get(repo_name)
        found: dict[str, StackSpec] = {}
        errors = []
        for entry in self.conf["discover"]:
            if entry["repo"] != repo_name:
                continue
            for folder in await repo.async_list_dirs(revision, entry["path"]):
                name = slug_from_folder(folder)
                if name is None or name in entry["exclude"] or any(
                        fnmatch.fnmatch(folder.rsplit("/", 1)[-1], pat) for pat in entry["exclude"]):
                    continue
                if name in found and found[name].path != folder:
                    errors.append(f"discover {entry['path']}: folders {found[name].path} and {folder} "
                                  f"both make the stack name '{name}'")
                    continue
                found[name] = StackSpec.from_conf(entry, name=name, path=folder, discovered=True)
        self.discovered[repo_name] = found
        self.discover_errors = errors
        clashes = self._find_clashes()
        for error in [*errors, *(text for name, text in clashes.items() if name not in self.clashes)]:
            _LOGGER.error("Stacks: %s", error)
        self.clashes = clashes
