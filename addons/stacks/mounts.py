"""What a stack's services read from disk, made right for the Docker host: bind sources and SOPS env files.

From the model `compose config --no-env-resolution` prints (absolute paths, env files not yet read),
this plans an override file, Dockmaster's own `.dockmaster.override.yaml`, that:
- maps bind sources under the data dir to the folder the Docker host knows (see `hostpaths`);
- points an `env_file:` naming one of the stack's SOPS files at its decrypted copy on tmpfs.
A bind source the host cannot reach, or an `env_file:` holding SOPS-encrypted text that is not
decrypted, fails the deploy before any container is touched.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import ValidationFailed
from appliance.hostpaths import HostPaths

OVERRIDE_FILE = ".dockmaster.override.yaml"
_SOPS_MARKERS = (b"sops_version=", b"ENC[AES256_GCM,", b'"sops":', b"\nsops:")
_SNIFF = 1 << 20


class MountError(ValidationFailed):
    """A service would read a path that does not exist on the Docker host, or encrypted text."""


@dataclass
class MountPlan:
    """Per-service replacements (`volumes`, `env_file`) and what they change, for the run log."""

    services: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def apply(self, model: dict[str, Any]) -> dict[str, Any]:
        """The model as compose will run it (for the dry-run's resolved config)."""
        result = copy.deepcopy(model)
        for name, keys in self.services.items():
            result.setdefault("services", {}).setdefault(name, {}).update(copy.deepcopy(keys))
        return result


def looks_encrypted(path: Path) -> bool:
    """True when a file holds SOPS metadata (any of its formats); blocks on file I/O."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF)
    except OSError:
        return False
    return any(marker in head for marker in _SOPS_MARKERS)


def _rel(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def reads_sops(model: dict[str, Any]) -> bool:
    """True when a service's resolved environment came from a SOPS-encrypted file (its metadata keys)."""
    for service in (model.get("services") or {}).values():
        environment = service.get("environment") or {}
        if isinstance(environment, dict) and ("sops_version" in environment or any(
                isinstance(v, str) and v.startswith("ENC[") for v in environment.values())):
            return True
    return False


def plan(model: dict[str, Any], *, root: Path, host: HostPaths, decrypted: dict[str, Path],
         env_files: dict[str, list[Any]] | None = None) -> MountPlan:
    """Plan the override for a resolved model whose project folder is `root`; blocks (reads env files).

    `decrypted` maps a SOPS file (relative to the stack folder) to its decrypted copy on tmpfs;
    `env_files` holds each service's `env_file:` entries (see `ComposeRunner.async_env_files`), None
    when no service reads a SOPS file. Raises MountError naming every service, key and path that cannot work.
    """
    result = MountPlan()
    problems: list[str] = []
    for name, service in sorted((model.get("services") or {}).items()):
        volumes, moved = _binds(name, service.get("volumes") or [], host, problems, result.notes)
        env_file, swapped = _env_files(name, (env_files or {}).get(name) or [], root, decrypted, problems,
                                       result.notes)
        keys: dict[str, list[Any]] = {}
        if moved:
            keys["volumes"] = volumes
        if swapped:
            keys["env_file"] = env_file
        if keys:
            result.services[name] = keys
    if problems:
        raise MountError("; ".join(problems))
    return result


def _binds(service: str, volumes: list[Any], host: HostPaths, problems: list[str],
           notes: list[str]) -> tuple[list[Any], bool]:
    out: list[Any] = []
    moved = False
    for volume in volumes:
        if isinstance(volume, dict) and volume.get("type") == "bind" and volume.get("source"):
            source = str(volume["source"])
            mapped = host.to_host(source)
            if mapped is None:
                problems.append(f"service {service}: bind source {source} would not exist on the Docker host "
                                f"({host.how})")
            elif mapped != source:
                volume = {**volume, "source": mapped}
                moved = True
                notes.append(f"service {service}: bind {volume.get('target')} uses {mapped} on the Docker host")
        out.append(volume)
    return out, moved


def _env_files(service: str, entries: list[Any], root: Path, decrypted: dict[str, Path], problems: list[str],
               notes: list[str]) -> tuple[list[Any], bool]:
    out: list[Any] = []
    swapped = False
    for entry in entries:
        item: dict[str, Any] = dict(entry) if isinstance(entry, dict) else {"path": str(entry), "required": True}
        if "${" in str(item["path"]):
            out.append(item)  # a variable in the path: compose expands it when it reads the file
            continue
        path = Path(os.path.normpath(str(item["path"])))
        rel = _rel(path, root)
        if rel is not None and rel in decrypted:
            item["path"] = str(decrypted[rel])
            swapped = True
            notes.append(f"service {service}: env_file {rel} is read from its decrypted copy on tmpfs")
        elif looks_encrypted(path):
            shown = rel or str(path)
            problems.append(f"service {service}: env_file {shown} is SOPS-encrypted; list it under the stack's "
                            "'sops:' so the deploy reads its decrypted copy (the container would get ENC[...] "
                            "text otherwise)")
        out.append(item)
    return out, swapped


class _Override(list[Any]):
    """A list written with compose's `!override` tag (it replaces the list instead of merging into it)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Override, lambda dumper, data: dumper.represent_sequence("!override", list(data)))


def write_override(path: Path, mount_plan: MountPlan) -> None:
    """Write the override file compose reads after the stack's own files; blocks on file I/O."""
    doc = {"services": {name: {key: _Override(value) for key, value in keys.items()}
                        for name, keys in mount_plan.services.items()}}
    path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False), encoding="utf-8")
