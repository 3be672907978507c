"""The environment of a compose call: only what it needs, never the rest of Dockmaster's own environment.

A stack's files come from a repository whose authors may be anyone who can push. Compose interpolates
`${VAR}` from its environment, so Dockmaster's own variables (`!env_var` values, `SOPS_AGE_KEY`, tokens)
must not be in it: a compose call gets `PATH`, a fresh `HOME`, how to reach the Docker engine, the
stack's `env` and its decrypted SOPS values. A variable nobody declared is unset: compose warns in the
run log and uses an empty string.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from appliance.engines import ENGINE_VARIABLES

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Names a stack's env or SOPS values may not set: they steer compose itself, not the services.
_FIXED = frozenset({"PATH", "HOME", "DOCKER_CONFIG", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_ENV_FILES"})
_FIXED_PREFIXES = ("DOCKER_", "BUILDX_")
HOME_PREFIX = "dockmaster-home-"


def docker_config(environ: Mapping[str, str], data_dir: Path | None) -> str:
    """The Docker CLI config folder compose uses: DOCKER_CONFIG, the appliance's registry logins, or ~/.docker."""
    if environ.get("DOCKER_CONFIG"):
        return environ["DOCKER_CONFIG"]
    if data_dir is not None and (data_dir / "docker" / "config.json").is_file():
        return str(data_dir / "docker")
    home = environ.get("HOME") or str(Path.home())
    return str(Path(home) / ".docker")


def steers_compose(name: str) -> bool:
    """True for a variable that would change where compose connects or what it reads, not what services get."""
    return name in _FIXED or name.startswith(_FIXED_PREFIXES)


def compose_env(stack_env: Mapping[str, str], *, home: Path, environ: Mapping[str, str] | None = None,
                data_dir: Path | None = None, engine: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of one compose process: the engine's variables, then the stack's own values.

    `engine` holds the variables of the stack's engine; without it the environment's own are used.
    """
    source = os.environ if environ is None else environ
    env = {name: value for name, value in stack_env.items() if not steers_compose(name)}
    env["PATH"] = source.get("PATH") or DEFAULT_PATH
    env["HOME"] = str(home)
    env["DOCKER_CONFIG"] = docker_config(source, data_dir)
    if engine is not None:
        env.update({name: value for name, value in engine.items() if name in ENGINE_VARIABLES})
        return env
    for name in ENGINE_VARIABLES:
        if source.get(name):
            env[name] = source[name]
    return env


def make_home() -> Path:
    """A fresh 0700 HOME for one compose process (blocks on file I/O; `remove_home` deletes it)."""
    return Path(tempfile.mkdtemp(prefix=HOME_PREFIX))


def remove_home(path: Path) -> None:
    """Delete a HOME made by `make_home` with whatever compose left in it (blocks on file I/O)."""
    shutil.rmtree(path, ignore_errors=True)
