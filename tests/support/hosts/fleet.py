"""Starts real SSH test hosts in parallel and restarts them when they ask to reboot (the harness)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import docker

from .image import TEST_USER, ensure_host_image
from .other_repos import build_pacman_repo, build_rpm_repo
from .repo import build_repo

LABEL = "io.dockmaster.test-host"


@dataclass
class TestHost:
    """One running test host: its container, published port and host key."""

    __test__ = False  # not a pytest test class

    name: str
    container: Any
    port: int
    harness: Path
    host_key: str = ""
    reboots: int = 0
    flavour: str = "apt"  # the package manager: apt, dnf or pacman

    @property
    def known_hosts_line(self) -> str:
        """This host's entry for an OpenSSH known_hosts file."""
        return f"[127.0.0.1]:{self.port} {self.host_key}"

    def exec(self, *argv: str, user: str = "root") -> tuple[int, str]:
        """Run a command inside the container through the engine (not over the network; blocks)."""
        result = self.container.exec_run(list(argv), user=user)
        return result.exit_code, result.output.decode(errors="replace")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (fixed per host, so it survives `docker restart`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ssh(port: int, timeout: float = 60.0) -> None:
    """Block until sshd on 127.0.0.1:port sends its banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.settimeout(2)
            if sock.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.1)
    raise TimeoutError(f"sshd on 127.0.0.1:{port} did not answer within {timeout}s")


@dataclass
class HostFleet:
    """A set of test hosts sharing one client key and one reboot harness thread."""

    client: docker.DockerClient
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dm-hosts-")))
    hosts: list[TestHost] = field(default_factory=list)
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))

    def __post_init__(self) -> None:
        """Make the client key and the two apt repositories (good and broken)."""
        ensure_host_image(self.client)
        self.key_path = self.workdir / "id_ed25519"
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(self.key_path))
        self.key_path.chmod(0o600)
        self.public_key = key.export_public_key().decode().strip()
        self.repo = build_repo(self.workdir / "repo")
        self.broken_repo = build_repo(self.workdir / "repo-broken", broken=True)
        self._flavour_repos: dict[str, Path] = {}
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch_reboots, name="dm-reboot-harness", daemon=True)
        self._watcher.start()

    def _repo_for(self, flavour: str) -> Path:
        """The local repository a flavour's hosts mount at /repo (built once per fleet; blocks)."""
        with self._build_lock:
            if flavour not in self._flavour_repos:
                ensure_host_image(self.client, flavour)
                builder = build_rpm_repo if flavour == "dnf" else build_pacman_repo
                self._flavour_repos[flavour] = builder(self.workdir / f"repo-{flavour}")
            return self._flavour_repos[flavour]

    def _start_one(self, index: int, broken: bool, flavour: str = "apt") -> TestHost:
        name = f"dm-host-{self.suffix}-{index}"
        harness = self.workdir / name
        harness.mkdir()
        (harness / "authorized_keys").write_text(self.public_key + "\n")
        os.chmod(harness, 0o777)  # the reboot script runs as root inside, but keep it simple for any user
        port = free_port()
        if flavour != "apt":
            repo = self._repo_for(flavour)
        elif broken:
            repo = self.broken_repo
        else:
            repo = self.repo
        image = ensure_host_image(self.client, flavour)
        container = self.client.containers.run(
            image, name=name, hostname=name, detach=True, labels={LABEL: self.suffix},
            ports={"22/tcp": ("127.0.0.1", port)},
            # /run is a tmpfs as on a real machine: /run/reboot-required vanishes on reboot.
            tmpfs={"/run": "mode=755"},
            volumes={
                str(harness): {"bind": "/harness", "mode": "rw"},
                str(repo): {"bind": "/repo", "mode": "ro"},
            },
        )
        host = TestHost(name, container, port, harness, flavour=flavour)
        wait_for_ssh(port)
        code, out = host.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub")
        assert code == 0, out
        host.host_key = " ".join(out.split()[:2])
        return host

    def start(self, count: int, *, broken: set[int] | frozenset[int] = frozenset(),
              flavour: str = "apt") -> list[TestHost]:
        """Start `count` hosts in parallel (indexes in `broken` get a failing dm-demo v2; apt only; blocks).

        `flavour` picks the package manager: apt, or Debian's dnf or pacman standing in for Fedora or Arch.
        """
        if flavour != "apt":
            if broken:
                raise ValueError("broken upgrades exist only for apt hosts")
            self._repo_for(flavour)
        base = len(self.hosts)
        with ThreadPoolExecutor(max_workers=min(count, 16)) as pool:
            started = list(pool.map(lambda i: self._start_one(base + i, i in broken, flavour), range(count)))
        with self._lock:
            self.hosts.extend(started)
        return started

    def write_known_hosts(self, path: Path, hosts: list[TestHost] | None = None) -> Path:
        """Write a known_hosts file trusting the given hosts (all by default)."""
        path.write_text("".join(h.known_hosts_line + "\n" for h in (hosts or self.hosts)))
        return path

    def host_config(self, host: TestHost, known_hosts: Path, **extra: Any) -> dict[str, Any]:
        """A `hosts:` entry for this test host."""
        return {
            "name": host.name.replace("dm-host-", "h-"), "address": "127.0.0.1", "port": host.port,
            "user": TEST_USER, "ssh_key": str(self.key_path), "known_hosts": str(known_hosts),
            "become": "sudo", **extra,
        }

    def _watch_reboots(self) -> None:
        # The reboot script inside a host writes /harness/reboot-request; restart that container.
        while not self._stop.wait(0.1):
            with self._lock:
                hosts = list(self.hosts)
            for host in hosts:
                request = host.harness / "reboot-request"
                if request.exists():
                    with contextlib.suppress(FileNotFoundError):
                        request.unlink()
                    with contextlib.suppress(docker.errors.APIError):
                        host.container.restart(timeout=1)
                        host.reboots += 1

    def close(self) -> None:
        """Remove every container this fleet started and its files (blocks)."""
        self._stop.set()
        self._watcher.join(timeout=5)
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda h: _remove(h.container), self.hosts))
        self.hosts.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _remove(container: Any) -> None:
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        container.remove(force=True)
