"""Registry credentials in the Docker CLI's format at `data_dir/docker/config.json` (written by `registry login`)."""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

# The Docker CLI files Docker Hub under its old index address.
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
DOCKER_HUB = "registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class Credential:
    """A user and password (or token) for one registry."""

    username: str
    password: str

    def basic(self) -> str:
        """The `Authorization: Basic …` header value."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def auth_config(self) -> dict[str, str]:
        """What the docker SDK's `images.pull(auth_config=…)` takes."""
        return {"username": self.username, "password": self.password}


def config_path(data_dir: Path) -> Path:
    """Where the appliance keeps (or finds mounted) the Docker CLI config."""
    return data_dir / "docker" / "config.json"


def registry_key(registry: str) -> str:
    """The form registries are filed under: `host[:port]`, Docker Hub under one name."""
    text = registry.strip().lower()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    text = text.split("/", 1)[0]
    return DOCKER_HUB if text in ("index.docker.io", "docker.io", DOCKER_HUB) else text


def read_credentials(path: Path) -> dict[str, Credential]:
    """Registry host → credential from a Docker CLI config (`auths.*.auth` or username/password); blocks.

    Credential helpers (`credsStore`) are not run: the appliance starts no programs named by a file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        _LOGGER.error("Cannot read registry credentials %s: %s", path, err)
        return {}
    found: dict[str, Credential] = {}
    for registry, entry in (data.get("auths") or {}).items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                _LOGGER.error("Registry credentials for %s in %s are not base64 user:password", registry, path)
                continue
        if user and password:
            found[registry_key(registry)] = Credential(user, password)
    return found


def credential_for(path: Path, registry: str) -> Credential | None:
    """The credential for `registry` (`host[:port]`), read fresh so a mounted file's changes count; blocks."""
    return read_credentials(path).get(registry_key(registry))


def write_login(path: Path, registry: str, username: str, password: str) -> None:
    """Add or replace one registry's login in the config (file 0600, folder 0700); blocks."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        data = {}
    key = "https://index.docker.io/v1/" if registry_key(registry) == DOCKER_HUB else registry_key(registry)
    auths = data.setdefault("auths", {})
    for other in [k for k in auths if registry_key(k) == registry_key(registry)]:
        auths.pop(other)
    auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    tmp.replace(path)
