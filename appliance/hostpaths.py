"""Host paths: where Dockmaster's data dir is on the Docker host, so bind sources name folders that exist there.

Compose resolves `./data` against the working folder as Dockmaster sees it. On the Docker host that is
the same path only when Dockmaster runs there (or in a container whose mount keeps the path). Inside
the image, `/config` is usually bound from another folder (`/mnt/user/appdata/dockmaster` on
Unraid): Dockmaster inspects its own container through the socket, finds the mount that holds its
data dir and maps bind sources under it to the host path.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)
_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")
_CGROUP_ID = re.compile(r"(?:docker-|/docker/)([0-9a-f]{64})")
_SHORT_ID = re.compile(r"[0-9a-f]{12}|[0-9a-f]{64}")


@dataclass(frozen=True)
class HostPaths:
    """How paths under the data dir translate to the Docker host."""

    local: Path
    host: Path | None
    how: str

    def to_host(self, path: str) -> str | None:
        """The host path of `path`: unchanged outside the data dir, None when the host cannot reach it."""
        candidate = Path(os.path.normpath(path))
        if candidate != self.local and self.local not in candidate.parents:
            return path
        if self.host is None:
            return None
        return str(self.host / candidate.relative_to(self.local))

    @property
    def ok(self) -> bool:
        """True when bind sources under the data dir exist on the Docker host."""
        return self.host is not None


def from_mounts(data_dir: Path, mounts: list[dict[str, Any]]) -> HostPaths:
    """Map the data dir through the container mount that holds it (the deepest one wins)."""
    best: dict[str, Any] | None = None
    for mount in mounts:
        dest = Path(mount.get("Destination") or "/")
        holds = (dest == data_dir or dest in data_dir.parents) and mount.get("Source")
        if holds and (best is None or len(str(dest)) > len(str(best["Destination"]))):
            best = mount
    if best is None:
        return HostPaths(data_dir, None, f"the data dir {data_dir} is inside Dockmaster's container, on no volume "
                                         "or bind mount; bind it from the host (see docs/install.md)")
    source, dest = Path(best["Source"]), Path(best["Destination"])
    host = source / data_dir.relative_to(dest)
    if source == dest:
        return HostPaths(data_dir, host, f"the data dir is mounted at the same path on the host ({source})")
    return HostPaths(data_dir, host, f"the data dir is {host} on the Docker host (mount {source} -> {dest})")


def own_container_id(mountinfo: str, cgroup: str) -> str | None:
    """This process's container id, read from its mounts (/etc/hostname and friends) or its cgroup."""
    found = _CONTAINER_ID.search(mountinfo) or _CGROUP_ID.search(cgroup)
    return found.group(1) if found else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def in_container() -> bool:
    """True inside a Docker (or Podman) container."""
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def _candidates() -> list[str]:
    """Names the engine may know this process's container by: its id, else a container-id hostname."""
    cid = own_container_id(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"))
    hostname = os.environ.get("HOSTNAME", "")
    return [c for c in (cid, hostname if _SHORT_ID.fullmatch(hostname) else None) if c]


def _inspect_own(client: Any, candidates: list[str]) -> dict[str, Any] | None:
    for candidate in candidates:
        try:
            attrs: dict[str, Any] = client.containers.get(candidate).attrs
        except Exception as err:  # not found, or the engine is unreachable: try the next name
            _LOGGER.debug("Container %s: %s", candidate, err)
            continue
        if str(attrs.get("Id", "")).startswith(candidate):
            return attrs
    return None


def own_container(client: Any) -> dict[str, Any] | None:
    """The engine's inspect record of the container Dockmaster runs in; None outside one; blocks."""
    if not in_container():
        return None
    return _inspect_own(client, _candidates())


def detect(client: Any, data_dir: Path) -> HostPaths:
    """Find where the data dir is on the Docker host; blocks (reads /proc, asks the engine)."""
    data_dir = data_dir.resolve()
    if not in_container():
        return HostPaths(data_dir, data_dir, "Dockmaster runs on the Docker host")
    candidates = _candidates()
    if not candidates:
        # No engine made this container (another runtime, or the engine runs beside us in it):
        # the engine sees our file system as we do.
        return HostPaths(data_dir, data_dir, "no Docker container id found for Dockmaster; paths are used as they are")
    attrs = _inspect_own(client, candidates)
    if attrs is not None:
        return from_mounts(data_dir, attrs.get("Mounts") or [])
    return HostPaths(data_dir, None, f"Dockmaster runs in container {candidates[0][:12]}, which the Docker engine "
                                     "does not know, so it cannot tell where its data dir is on the host")
