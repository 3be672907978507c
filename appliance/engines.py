"""Docker engines by name: `local` (the environment's socket) and the ones the `engines` addon adds.

A stack names its engine; compose gets that engine's variables (`DOCKER_HOST`, TLS files) and the
docker SDK a client of its own per engine. How an engine is reached (a TLS port, a unix socket
forwarded over SSH) is the link's business; callers only ask for a client or for the variables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from .errors import NotFound, Unavailable

if TYPE_CHECKING:
    from docker import DockerClient

LOCAL = "local"
# How the Docker CLI and compose reach an engine; nothing else of Dockmaster's environment reaches them.
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION")
CLIENT_TIMEOUT = 60


class EngineUnavailable(Unavailable):
    """A Docker engine does not answer: its stacks are `unknown`, not failed."""

    code = "engine_unreachable"

    def __init__(self, engine: str, cause: str) -> None:
        """Name the engine and what went wrong."""
        super().__init__(f"engine {engine} is unreachable: {cause}", details={"engine": engine})
        self.engine = engine


@dataclass(frozen=True)
class FileChannel:
    """Where an engine's host keeps stack working folders, when Dockmaster can write files there."""

    root: PurePosixPath  # `data_dir/stacks` on that host
    delivers: bool  # True when tracked files are copied there (SSH); False: binds only name folders there


class EngineLink(Protocol):
    """One way to reach a Docker engine."""

    @property
    def name(self) -> str:
        """The engine's name (`local`, or one from `engines:`)."""

    @property
    def url(self) -> str:
        """Where it is, as people read it (never holding a secret)."""

    def environment(self) -> dict[str, str]:
        """The variables a docker CLI or compose process needs to reach this engine."""

    def client(self) -> DockerClient:
        """A new docker SDK client for this engine (blocks: opens nothing until the first call)."""

    async def async_ready(self) -> None:
        """Make the engine reachable (open a tunnel); raises EngineUnavailable."""

    async def async_close(self) -> None:
        """Release what `async_ready` opened."""

    @property
    def files(self) -> FileChannel | None:
        """Where stack folders live on a remote engine's host; None for the local engine."""


class LocalEngine:
    """The engine of the environment (`DOCKER_HOST`, else the default socket)."""

    name = LOCAL

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Read the engine variables from `environ` (default: this process's environment) when asked."""
        self._environ = environ

    @property
    def url(self) -> str:
        """The socket or address the environment names."""
        return self.environment().get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @property
    def files(self) -> FileChannel | None:
        """None: the local engine's host is the one Dockmaster's own paths are on."""
        return None

    def environment(self) -> dict[str, str]:
        """The engine variables of this process's environment (none: compose uses the default socket)."""
        source = os.environ if self._environ is None else self._environ
        return {name: source[name] for name in ENGINE_VARIABLES if source.get(name)}

    def client(self) -> DockerClient:
        """A client from the environment (blocks)."""
        import docker as docker_sdk

        return docker_sdk.from_env(timeout=CLIENT_TIMEOUT)

    async def async_ready(self) -> None:
        """Nothing to open."""

    async def async_close(self) -> None:
        """Nothing to close."""


class Engines:
    """The named engines and one cached docker SDK client each."""

    def __init__(self) -> None:
        """Start with the local engine only."""
        self._links: dict[str, EngineLink] = {LOCAL: LocalEngine()}
        self._clients: dict[str, Any] = {}

    def add(self, link: EngineLink) -> None:
        """Add (or replace) an engine."""
        self._clients.pop(link.name, None)
        self._links[link.name] = link

    def remove(self, name: str) -> EngineLink | None:
        """Forget an engine (the caller closes it); `local` always stays."""
        if name == LOCAL:
            return None
        self._clients.pop(name, None)
        return self._links.pop(name, None)

    def names(self) -> list[str]:
        """Every engine, `local` first."""
        return [LOCAL, *sorted(n for n in self._links if n != LOCAL)]

    def __contains__(self, name: object) -> bool:
        """True for a known engine name."""
        return name in self._links

    def get(self, name: str) -> EngineLink:
        """One engine's link; raises NotFound."""
        try:
            return self._links[name]
        except KeyError:
            raise NotFound(f"no engine named '{name}'") from None

    def docker(self, name: str = LOCAL) -> DockerClient:
        """The shared docker SDK client of an engine; its calls block (use an executor)."""
        client: DockerClient | None = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.get(name).client()
        return client

    async def async_docker(self, name: str = LOCAL) -> DockerClient:
        """An engine's client once its link is up (a tunnel reopened if it dropped); raises EngineUnavailable.

        A new client is made in a worker thread: making one may ask the engine for its API version,
        and a forwarded socket is served by the event loop itself.
        """
        await self.get(name).async_ready()
        client: DockerClient | None = self._clients.get(name)
        if client is None:
            client = await asyncio.to_thread(self.docker, name)
        return client

    def forget_client(self, name: str) -> Any:
        """Drop an engine's cached client (its address changed); returns it for closing."""
        return self._clients.pop(name, None)

    def clients(self) -> list[Any]:
        """Every cached client (closed at shutdown)."""
        return list(self._clients.values())

    async def async_close(self) -> None:
        """Close every link (clients are closed by the caller, in an executor)."""
        for link in list(self._links.values()):
            await link.async_close()
