"""Fixtures for the repos addon: real bare git remotes in tmp_path and the real app around them."""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.core import Appliance
from appliance.keys import APPLIANCE_KEY
from tests.support.git import GIT_ENV, GitRemote, git  # noqa: F401 - shared with the tests here


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitDaemon:
    """`git daemon` serving a folder on 127.0.0.1 (a network remote that can go down)."""

    def __init__(self, root: Path) -> None:
        """Start serving every repo under `root`."""
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}", "--listen=127.0.0.1",
             f"--port={self.port}", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def url_for(self, path: Path) -> str:
        """The git:// URL of a repo under the served root."""
        return f"git://127.0.0.1:{self.port}/{path.relative_to(self.root)}"

    def stop(self) -> None:
        """Stop serving; the port then refuses connections."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    """A git daemon serving tmp_path/remotes."""
    (tmp_path / "remotes").mkdir(exist_ok=True)
    daemon = GitDaemon(tmp_path / "remotes")
    yield daemon
    daemon.stop()


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    """A bare remote with one commit on main."""
    return GitRemote(tmp_path / "remotes" / "infra")


async def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `check()` (sync or async) is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def repo_entry(url: str | Path, **extra: Any) -> dict[str, Any]:
    """One `repos:` item named infra."""
    return {"name": "infra", "url": str(url), **extra}


async def sync_runs(app: Appliance, name: str = "infra") -> list[dict[str, Any]]:
    """Every sync run of a repo, oldest first."""
    return list(reversed(await app.runs.list(kind="sync", target=name, limit=500)))


async def settled(app: Appliance, name: str = "infra") -> list[dict[str, Any]]:
    """Wait until no sync run of the repo is queued or running; returns all runs."""
    def _live() -> bool:
        return any(r.kind == "sync" and r.target == name for r in app.runs.active.values())

    async def _done() -> list[dict[str, Any]] | None:
        # A run leaves `active` only once its final row is committed: when none is active before the
        # read, the rows read are final. (Checking only afterwards would accept a row read stale
        # while its run was finishing.)
        if _live():
            return None
        runs = await sync_runs(app, name)
        return runs if runs and not _live() and not any(r["status"] in ("queued", "running") for r in runs) else None

    result: list[dict[str, Any]] = await wait_for(_done)
    return result


AppFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
def make_repos_app(make_client: Any) -> AppFactory:
    """The real app with a `repos:` block; waits for the startup sync and returns (client, app)."""

    async def _make(repos: list[dict[str, Any]], *, wait: bool = True, **kwargs: Any) -> tuple[Any, Appliance]:
        client = await make_client({"repos": repos}, **kwargs)
        app = client.app[APPLIANCE_KEY]
        if wait:
            for entry in repos:
                await settled(app, entry["name"])
        return client, app

    return _make


class HttpsGitServer:
    """`git http-backend` behind an aiohttp TLS server on 127.0.0.1 that demands Basic auth."""

    def __init__(self, root: Path, cert_dir: Path, username: str, token: str) -> None:
        """Prepare a server for the repos under `root`; `async_start` serves it."""
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
        self.cert, self.key = _self_signed_cert(cert_dir)
        self.requests: list[dict[str, str]] = []
        self.denied = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url_for(self, path: Path, userinfo: str = "") -> str:
        """The https URL of a repo under the served root."""
        at = f"{userinfo}@" if userinfo else ""
        return f"https://{at}127.0.0.1:{self.port}/git/{path.relative_to(self.root)}"

    async def async_start(self) -> None:
        """Serve on a free port with a self-signed certificate for 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/git/{path:.*}", self._handle)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=ctx).start()

    async def async_stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if not hmac.compare_digest(request.headers.get("Authorization", ""), self.expected):
            self.denied += 1
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="git"'})
        body = await request.read()  # aiohttp already undid any Content-Encoding
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": "/" + request.match_info["path"], "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string, "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "git", "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""), "GIT_CONFIG_NOSYSTEM": "1",
        }
        proc = await asyncio.create_subprocess_exec(
            "git", "http-backend", env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate(body)
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers[key.strip()] = value.strip()
        return web.Response(status=status, headers=headers, body=payload)


def _self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for IP 127.0.0.1 (and its key), written to `folder`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


HTTPS_TOKEN = "ghp_marker7Q2xTokenValue9Z"


@pytest.fixture
async def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A token-protected https git server for tmp_path/remotes; git trusts its certificate."""
    (tmp_path / "remotes").mkdir(exist_ok=True)
    server = HttpsGitServer(tmp_path / "remotes", tmp_path / "tls", "x-access-token", HTTPS_TOKEN)
    await server.async_start()
    monkeypatch.setenv("GIT_SSL_CAINFO", str(server.cert))
    yield server
    await server.async_stop()


class SshGitServer:
    """An SSH server on 127.0.0.1 (asyncssh) that runs git-upload-pack for one deploy key."""

    def __init__(self, folder: Path) -> None:
        """Make a host key, a client deploy key (0600) and an empty known_hosts in `folder`."""
        import asyncssh

        folder.mkdir(parents=True, exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.deploy_key = folder / "deploy_key"
        client_key.write_private_key(str(self.deploy_key))
        self.deploy_key.chmod(0o600)
        self.authorized = client_key.export_public_key().decode()
        self.known_hosts = folder / "known_hosts"
        self.known_hosts.write_text("")
        self.port = 0
        self.commands: list[str] = []
        self._server: Any = None

    def trust(self) -> None:
        """Write the server's host key into known_hosts, as ssh-keyscan would."""
        public = self.host_key.export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public}\n")

    async def async_authorize(self, public_key: str) -> None:
        """Accept another client key, as pasting a deploy key into a forge does (restarts on the same port)."""
        import asyncssh

        self.authorized += "\n" + public_key.strip() + "\n"
        await self.async_stop()
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", self.port, server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.authorized),
            process_factory=self._handle, encoding=None,
        )

    def url_for(self, path: Path) -> str:
        """The ssh:// URL of a repo on this machine."""
        return f"ssh://git@127.0.0.1:{self.port}{path}"

    async def async_start(self) -> None:
        """Listen on a free port."""
        import asyncssh

        self.port = free_port()
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", self.port, server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.authorized),
            process_factory=self._handle, encoding=None,
        )

    async def async_stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, process: Any) -> None:
        import shlex

        command = process.command or ""
        self.commands.append(command)
        argv = shlex.split(command)
        if not argv or argv[0] != "git-upload-pack":
            process.exit(1)
            await process.wait_closed()
            return
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        await process.redirect(stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr)
        process.exit(await proc.wait())
        await process.wait_closed()  # runs asyncssh's cleanup of the forwarding queues


@pytest.fixture
async def ssh_server(tmp_path: Path) -> Any:
    """An SSH git server for repos on this machine, with a deploy key and an empty known_hosts."""
    server = SshGitServer(tmp_path / "ssh")
    await server.async_start()
    yield server
    await server.async_stop()
