"""Command-line verbs of the repos addon: `dockmaster repo trust NAME`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from appliance.cli import EXIT_USAGE, config_path
from appliance.config import check_config, data_dir_for

from .deploykey import async_trust


def register(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """Add `repo trust` to the `dockmaster` parser."""
    repo = sub.add_parser("repo", help="git repositories")
    repo_sub = repo.add_subparsers(dest="repo_command", required=True)
    trust = with_config(repo_sub.add_parser("trust", help="show a repo's ssh host key and add it to known_hosts"))
    trust.add_argument("name")
    trust.add_argument("--yes", action="store_true", help="trust without asking (only after checking out of band)")
    trust.set_defaults(func=cmd_repo_trust)


def cmd_repo_trust(args: argparse.Namespace) -> int:
    """Show a repo's ssh host key fingerprint and add it to its known_hosts once confirmed."""
    path = config_path(args)
    checked = check_config(path)
    entry = next((r for r in checked.domains.get("repos") or [] if r["name"] == args.name), None)
    if entry is None:
        print(f"no valid repo named '{args.name}' in {path}", file=sys.stderr)
        return EXIT_USAGE
    core = checked.domains.get("dockmaster", {})

    def _confirm(question: str) -> bool:
        if args.yes:
            return True
        print(question, end="", flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    result: int = asyncio.run(async_trust(entry, data_dir_for(path.resolve(), core), core.get("name", "dockmaster"),
                                          confirm=_confirm, out=print))
    return result
