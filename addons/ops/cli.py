"""Command-line verbs of the operations console: `dockmaster registry login`."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from appliance.cli import EXIT_OK, EXIT_USAGE, config_path
from appliance.config import check_config, data_dir_for

from .credentials import config_path as docker_config_path
from .credentials import write_login


def register(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """Add `registry login` to the `dockmaster` parser."""
    registry = sub.add_parser("registry", help="container registries")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True)
    login = with_config(registry_sub.add_parser("login", help="store a registry login for image checks and pulls"))
    login.add_argument("registry", help="host[:port] of the registry (docker.io for Docker Hub)")
    login.add_argument("-u", "--username", required=True)
    login.add_argument("--password-stdin", action="store_true", help="read the password (or token) from stdin")
    login.set_defaults(func=cmd_registry_login)


def cmd_registry_login(args: argparse.Namespace) -> int:
    """Store a registry login in data_dir/docker/config.json for image checks and pulls."""
    path = config_path(args)
    core = check_config(path).domains.get("dockmaster", {})
    if sys.stdin.isatty() and not args.password_stdin:
        password = getpass.getpass(f"Password for {args.username}@{args.registry}: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("no password given", file=sys.stderr)
        return EXIT_USAGE
    target = docker_config_path(data_dir_for(path.resolve(), core))
    write_login(target, args.registry, args.username, password)
    print(f"saved the login for {args.registry} in {target}")
    return EXIT_OK
