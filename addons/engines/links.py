"""How Dockmaster reaches a remote engine: a TLS port, or the engine's unix socket forwarded over SSH.

The SSH link opens one asyncssh connection (host key checked against known_hosts, the configured key,
no agent, no ssh_config) and forwards a private local unix socket to the engine's socket on that host.
Compose and the docker SDK both talk to that local socket, so every compose call and every inspect
share one verified connection instead of starting an `ssh` process each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from appliance.engines import CLIENT_TIMEOUT, EngineUnavailable, FileChannel

if TYPE_CHECKING:
    import asyncssh
    import docker

_LOGGER = logging.getLogger(__name__)
CONNECT_TIMEOUT = 15.0
KEEPALIVE = 15.0
FIRST_API = "1.24"  # only for the one request that asks the engine for its own API version
TLS_FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}  # the names DOCKER_CERT_PATH must hold


def prepare_cert_dir(tls: dict[str, Path], folder: Path) -> Path:
    """Copy the TLS files under the names the Docker CLI expects into a 0700 folder (blocks: file I/O)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for key, name in TLS_FILES.items():
        target = folder / name
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Path(tls[key]).read_bytes())
    return folder


class TlsEngine:
    """An engine on `tcp://host:port` with TLS client certificates (the server's certificate is verified)."""

    def __init__(self, name: str, url: str, cert_dir: Path, *, stacks_dir: str) -> None:
        """Bind the address and the folder holding ca.pem, cert.pem and key.pem."""
        self.name = name
        self.url = url
        self.cert_dir = cert_dir
        # Binds such as ./data name folders on that host; no file reaches it through this link.
        self.files = FileChannel(PurePosixPath(stacks_dir), delivers=False)

    def environment(self) -> dict[str, str]:
        """DOCKER_HOST and the TLS variables compose needs."""
        return {"DOCKER_HOST": self.url, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.cert_dir)}

    def client(self) -> docker.DockerClient:
        """A TLS client that checks the engine's certificate against the CA (blocks)."""
        import docker as docker_sdk
        from docker.tls import TLSConfig

        tls = TLSConfig(client_cert=(str(self.cert_dir / "cert.pem"), str(self.cert_dir / "key.pem")),
                        ca_cert=str(self.cert_dir / "ca.pem"), verify=True)
        # requests would let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the engine's CA: the client reads no
        # environment. The API version is asked for by hand, as the SDK would ask before that is switched off.
        client = docker_sdk.DockerClient(base_url=self.url, tls=tls, timeout=CLIENT_TIMEOUT, version=FIRST_API)
        client.api.trust_env = False
        client.api._version = client.api.version(api_version=False)["ApiVersion"]
        return client

    async def async_ready(self) -> None:
        """Nothing to open: every call connects on its own."""

    async def async_close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom an SSH engine logs in."""

    address: str
    port: int
    user: str
    ssh_key: Path | None
    known_hosts: Path

    @classmethod
    def from_url(cls, url: str, *, ssh_key: Path | None, known_hosts: Path) -> SshTarget:
        """From `ssh://user@host[:port]` (the user defaults to root, as the Docker CLI's does)."""
        parts = urlsplit(url)
        return cls(parts.hostname or "", parts.port or 22, parts.username or "root", ssh_key, known_hosts)


class SshEngine:
    """An engine whose unix socket is forwarded over one SSH connection to a private local socket."""

    def __init__(self, name: str, target: SshTarget, *, socket: str, stacks_dir: str | None) -> None:
        """Bind the login and the engine's socket path on that host; nothing opens until `async_ready`."""
        self.name = name
        self.target = target
        self.socket = socket
        port = "" if target.port == 22 else f":{target.port}"
        self.url = f"ssh://{target.user}@{target.address}{port}"
        self._stacks_dir = stacks_dir
        self._root: PurePosixPath | None = PurePosixPath(stacks_dir) if stacks_dir else None
        # Unix socket paths are short (108 bytes): a private folder under the temp dir, not the data dir.
        self._folder = Path(tempfile.mkdtemp(prefix="dm-engine-"))
        self.local_socket = self._folder / "docker.sock"
        self._conn: asyncssh.SSHClientConnection | None = None
        self._listener: Any = None
        self._lock = asyncio.Lock()
        self._api_version: str | None = None

    @property
    def files(self) -> FileChannel:
        """Stack folders on that host (`~/dockmaster/stacks` unless `stacks_dir` says otherwise)."""
        home = "/root" if self.target.user == "root" else f"/home/{self.target.user}"
        return FileChannel(self._root or PurePosixPath(home, "dockmaster", "stacks"), delivers=True)

    @property
    def connected(self) -> bool:
        """True while the SSH connection is open."""
        return self._conn is not None and not self._conn.is_closed()

    def environment(self) -> dict[str, str]:
        """DOCKER_HOST pointing at the forwarded socket."""
        return {"DOCKER_HOST": f"unix://{self.local_socket}"}

    def client(self) -> docker.DockerClient:
        """A client on the forwarded socket (fails while the tunnel is down).

        The API version was asked for when the tunnel opened: the SDK must not ask on its own from
        the event loop's thread, which is the thread that serves the tunnel.
        """
        import docker as docker_sdk

        return docker_sdk.DockerClient(base_url=f"unix://{self.local_socket}", timeout=CLIENT_TIMEOUT,
                                       version=self._api_version or FIRST_API)

    async def async_ready(self) -> None:
        """Open the connection and the forward unless they are up; raises EngineUnavailable."""
        async with self._lock:
            if self.connected:
                return
            await self._async_drop()
            self._conn = await self._async_connect()
            try:
                await asyncio.to_thread(self.local_socket.unlink, True)
                self._listener = await self._conn.forward_local_path(str(self.local_socket), self.socket)
                await asyncio.to_thread(self.local_socket.chmod, 0o600)
                self._api_version = await _async_api_version(self.local_socket)
                if self._root is None:
                    async with self._conn.start_sftp_client() as sftp:
                        home = await sftp.realpath(".")
                    self._root = PurePosixPath(home) / "dockmaster" / "stacks"
            except Exception as err:
                await self._async_drop()
                raise EngineUnavailable(self.name, f"cannot forward {self.socket}: {err}") from None

    async def _async_connect(self) -> asyncssh.SSHClientConnection:
        import asyncssh

        target = self.target
        label = f"{target.user}@{target.address}:{target.port}"
        known = await asyncio.to_thread(_read_known_hosts, target.known_hosts)
        if known is None:  # never connect unchecked: asyncssh would skip the host key check
            raise EngineUnavailable(self.name, f"no known_hosts file at {target.known_hosts}: add the host's key "
                                               "(ssh-keyscan, checked out of band)")
        options: dict[str, Any] = {
            "port": target.port, "username": target.user, "agent_path": None, "config": [],
            "known_hosts": known, "connect_timeout": CONNECT_TIMEOUT,
            "login_timeout": CONNECT_TIMEOUT, "keepalive_interval": KEEPALIVE, "keepalive_count_max": 3,
        }
        if target.ssh_key is not None:
            options["client_keys"] = [str(target.ssh_key)]
        try:
            return await asyncssh.connect(target.address, **options)
        except asyncssh.HostKeyNotVerifiable as err:
            raise EngineUnavailable(self.name, f"host key of {label} not verified against "
                                               f"{target.known_hosts}: {err}") from None
        except asyncssh.PermissionDenied:
            raise EngineUnavailable(self.name, f"{label} refused the login (check user and ssh_key)") from None
        except (OSError, asyncssh.Error, TimeoutError) as err:
            raise EngineUnavailable(self.name, f"cannot connect to {label}: {err or type(err).__name__}") from None

    async def async_sftp(self) -> Any:
        """An SFTP client on the engine's connection (open it first); use as an async context manager."""
        await self.async_ready()
        assert self._conn is not None
        return self._conn.start_sftp_client()

    async def _async_drop(self) -> None:
        listener, conn = self._listener, self._conn
        self._listener = self._conn = None
        if listener is not None:
            listener.close()
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    async def async_close(self) -> None:
        """Close the forward and the connection, and remove the socket folder."""
        async with self._lock:
            await self._async_drop()
        await asyncio.to_thread(shutil.rmtree, self._folder, True)


async def _async_api_version(socket: Path) -> str:
    """The engine's API version, asked over its (forwarded) socket without blocking the loop."""
    import aiohttp

    connector = aiohttp.UnixConnector(path=str(socket))
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.get("http://engine/version", timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT)) as resp:
        resp.raise_for_status()
        data = await resp.json()
    return str(data["ApiVersion"])


def _read_known_hosts(path: Path) -> Any:
    """Parse known_hosts, or None when the file is missing (blocks: file I/O)."""
    import asyncssh

    return asyncssh.read_known_hosts(str(path)) if path.is_file() else None
