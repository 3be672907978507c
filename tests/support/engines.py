"""Pytest fixtures for extra Docker engines: TLS on 127.0.0.1, a single-node Swarm, one reached over SSH.

Import the fixtures into a conftest (`from tests.support.engines import tls_engine`). Each is
session-scoped: one engine per test session, removed with everything it created at the end.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import docker
import pytest

from .dockerd import ExtraEngine, extra_engine
from .hosts.fleet import free_port, wait_for_ssh
from .hosts.image import TEST_USER, ensure_host_image

REMOTE_SOCKET_DIR = "/run/dockerd"  # where the SSH host sees the engine's socket folder
LABEL = "io.dockmaster.test-engine"


@dataclass
class SshEngine:
    """An engine whose socket an SSH test host holds: what a client needs to reach it over SSH."""

    port: int  # sshd on 127.0.0.1
    user: str
    key: Path  # the client's private key
    known_hosts: Path  # holds the container's host key for [127.0.0.1]:port
    socket: str  # the engine's socket path on the SSH host
    stacks_dir: str  # a folder at the same path in the SSH host and on the engine's host (this machine)
    engine: ExtraEngine
    container: Any

    def exec(self, *argv: str, user: str = "root") -> tuple[int, str]:
        """Run a command in the SSH host through the main engine (not over the network; blocks)."""
        result = self.container.exec_run(list(argv), user=user)
        return result.exit_code, result.output.decode(errors="replace")


@pytest.fixture(scope="session")
def tls_engine() -> Iterator[ExtraEngine]:
    """A second dockerd on a unix socket and on tcp://127.0.0.1:PORT with --tlsverify (and --live-restore).

    `tcp_url`, `tls.ca`/`tls.cert`/`tls.key` (client side) and `socket` say how to reach it.
    """
    with extra_engine(tls=True, live_restore=True) as engine:
        yield engine


@pytest.fixture(scope="session")
def swarm_engine() -> Iterator[ExtraEngine]:
    """A second dockerd that is a single-node Swarm manager (its socket: `socket`, `unix_url`; TLS on `tcp_url`)."""
    with extra_engine(tls=True, swarm=True) as engine:
        yield engine


@contextlib.contextmanager
def ssh_host_for(engine: ExtraEngine, client: docker.DockerClient) -> Iterator[SshEngine]:
    """An sshd test container (on the main engine) holding `engine`'s socket and the docker CLI (blocks).

    The SSH user is in a group with the socket's gid, so it can use the engine as the docker group
    can on a real host; sshd allows StreamLocalForwarding (its default).
    """
    image = ensure_host_image(client)
    work = Path(tempfile.mkdtemp(prefix="dm-sshe-"))
    key_path = work / "id_ed25519"
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    (work / "harness").mkdir()
    # The engine runs on this machine, sshd in a container: the folder files are copied to must be the
    # same folder for both, as it is on a real host where sshd and dockerd share one filesystem.
    shared = work / "stacks"
    shared.mkdir()
    shared.chmod(0o777)
    (work / "harness" / "authorized_keys").write_text(key.export_public_key().decode())
    port = free_port()
    volumes = {
        str(work / "harness"): {"bind": "/harness", "mode": "rw"},
        str(engine.socket.parent): {"bind": REMOTE_SOCKET_DIR, "mode": "rw"},
        str(shared): {"bind": str(shared), "mode": "rw"},
    }
    docker_cli = shutil.which("docker")
    if docker_cli:
        volumes[docker_cli] = {"bind": "/usr/local/bin/docker", "mode": "ro"}
    container = client.containers.run(
        image, name=f"dm-sshe-{secrets.token_hex(3)}", detach=True, labels={LABEL: "ssh"},
        ports={"22/tcp": ("127.0.0.1", port)}, volumes=volumes,
    )
    try:
        host = SshEngine(port, TEST_USER, key_path, work / "known_hosts", f"{REMOTE_SOCKET_DIR}/docker.sock",
                         str(shared), engine, container)
        gid = engine.socket.stat().st_gid
        for argv in (["groupadd", "-g", str(gid), "-o", "dockerhost"], ["usermod", "-aG", "dockerhost", TEST_USER],
                     ["ln", "-sf", host.socket, "/var/run/docker.sock"]):
            code, out = host.exec(*argv)
            assert code == 0, out
        wait_for_ssh(port)
        code, out = host.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub")
        assert code == 0, out
        host.known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(out.split()[:2])}\n")
        yield host
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_engine(docker_client: Any) -> Iterator[SshEngine]:
    """A second dockerd whose socket an sshd test container holds (port, user, key, known_hosts, socket)."""
    with extra_engine() as engine, ssh_host_for(engine, docker_client) as host:
        yield host
