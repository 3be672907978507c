"""`dockmaster backup` and `dockmaster restore`: both work without the daemon (a backup also beside it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.cli import config_path
from appliance.config import check_config, data_dir_for
from appliance.errors import DockmasterError

from . import archive
from .engine import referenced_files, resolve_dir

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def backup(config_path: Path, to: str | None) -> int:
    """Write one archive to `--to` or `backup.to` (pruned to `backup.keep` there); prints its path."""
    checked = check_config(config_path)
    if not config_path.exists():
        print(f"{config_path} does not exist", file=sys.stderr)
        return EXIT_USAGE
    core = checked.domains.get("dockmaster", {})
    conf = checked.domains.get("backup") or {}
    folder = Path(to) if to else resolve_dir(config_path.resolve(), conf.get("to"))
    data_dir = data_dir_for(config_path.resolve(), core)
    # Online: SQLite's backup API copies a consistent database even while the daemon writes to it.
    made = archive.make_backup(config_path, data_dir, folder, name=core.get("name", "dockmaster"),
                               referenced=referenced_files(checked.domains))
    print(folder / made.name)
    if not to and conf.get("keep"):
        for name in archive.prune_backups(folder, conf["keep"]):
            print(f"removed {name} (keep {conf['keep']})")
    return EXIT_OK


def restore(archive_path: Path, config_path: Path) -> int:
    """Unpack an archive into an empty config folder (and the data dir its config names)."""
    if not archive_path.is_file():
        print(f"{archive_path} does not exist", file=sys.stderr)
        return EXIT_USAGE
    config_path.parent.mkdir(parents=True, exist_ok=True)

    def data_dir_of(path: Path) -> Path:
        return data_dir_for(path.resolve(), check_config(path).domains.get("dockmaster", {}))

    try:
        result = archive.restore_backup(archive_path, config_path, data_dir_of)
    except DockmasterError as err:
        print(f"dockmaster: restore refused: {err}", file=sys.stderr)
        return EXIT_FAIL
    print(f"restored {len(result['files'])} file(s) from a backup of Dockmaster {result['version']}: "
          f"config in {result['config_dir']}, data in {result['data_dir']}")
    print("check it with `dockmaster check-config`, then start Dockmaster")
    return EXIT_OK


def register(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """Add `backup` and `restore` to the `dockmaster` parser."""
    made = with_config(sub.add_parser("backup", help="write a backup of the appliance's state"))
    made.add_argument("--to", help="folder for the archive (default: backup.to, or backups/ beside the config)")
    made.set_defaults(func=lambda args: backup(config_path(args), args.to))
    back = with_config(sub.add_parser("restore", help="restore a backup into an empty config folder"))
    back.add_argument("file")
    back.set_defaults(func=lambda args: restore(Path(args.file), config_path(args)))
