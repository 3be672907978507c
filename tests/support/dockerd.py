"""Extra Docker engines for tests: a second `dockerd` beside the main one (DESIGN.md section 9).

Each engine has its own data root, exec root, pidfile, unix socket and bridge, and runs with
`--iptables=false` so it never touches the main engine's rules or its `docker0` (`--bridge none`,
and `--default-address-pool` at a restart, make dockerd delete `docker0`). Addresses come from a
10.X.0.0/16 block that no route on this machine uses: the bridge is 10.X.0.0/24, `docker_gwbridge`
10.X.1.0/24 and Swarm's overlay networks 10.X.64.0/18. Optional TLS on 127.0.0.1 with certificates
made here, optional single-node Swarm. Everything is removed on `close()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.tls import TLSConfig

from .images import BUSYBOX_IMAGE, ensure_busybox_image

LABEL = "io.dockmaster.test-engine"
_LOCK = Path(tempfile.gettempdir()) / "dm-eng.lock"  # address choice across concurrent test sessions
START_TIMEOUT = 60.0
API_VERSION = "1.41"  # Docker 20.10, the engine Debian ships here


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_udp_port() -> int:
    """A UDP port free on every address, in the range Swarm accepts for VXLAN (1024-49151)."""
    for port in secrets.SystemRandom().sample(range(20000, 49151), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port for the Swarm data path")


def _run(argv: list[str], *, input: bytes | None = None, check: bool = True) -> str:
    result = subprocess.run(argv, input=input, capture_output=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode(errors="replace")


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network that a route or an address on this machine covers."""
    used: list[ipaddress.IPv4Network] = []
    for route in json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("type", "unicast") in ("unicast", "local"):
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    for link in json.loads(_run(["ip", "-j", "-4", "addr"]) or "[]"):
        for info in link.get("addr_info", []):
            used.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return [net for net in used if isinstance(net, ipaddress.IPv4Network)]


def _pick_block() -> ipaddress.IPv4Network:
    """A 10.X.0.0/16 no route uses (callers hold the lock until their bridge holds an address)."""
    used = _used_networks()
    candidates = list(range(100, 250))
    secrets.SystemRandom().shuffle(candidates)
    for x in candidates:
        block = ipaddress.IPv4Network(f"10.{x}.0.0/16")
        if not any(block.overlaps(net) for net in used):
            return block
    raise RuntimeError("no free 10.X.0.0/16 block for a test engine")


def tls_client(url: str, config: TLSConfig, *, timeout: int = 120) -> docker.DockerClient:
    """A docker SDK client over TLS that trusts only `config`'s CA.

    requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (set on this machine) replace a session's own CA
    file, so the client must not read the environment; the API version is fixed because the SDK
    would otherwise ask the engine before that can be switched off.
    """
    client = docker.DockerClient(base_url=url, tls=config, timeout=timeout, version=API_VERSION)
    client.api.trust_env = False
    return client


@dataclass
class TlsFiles:
    """A CA and the server and client certificates signed by it (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    cert: Path
    key: Path


def make_tls(folder: Path) -> TlsFiles:
    """Make a CA, a server certificate for 127.0.0.1/localhost and a client certificate (openssl; blocks)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=dockmaster test CA"])
    files = TlsFiles(ca, folder / "server-cert.pem", folder / "server-key.pem",
                     folder / "cert.pem", folder / "key.pem")
    for cert, key, name, ext in (
        (files.server_cert, files.server_key, "server",
         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        (files.cert, files.key, "client", "extendedKeyUsage=clientAuth\n"),
    ):
        csr, extfile = folder / f"{name}.csr", folder / f"{name}.ext"
        extfile.write_text(ext)
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}"])
        _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
              "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extfile)])
    for path in folder.iterdir():
        if path.name.endswith("key.pem"):
            path.chmod(0o600)
    return files


@dataclass
class ExtraEngine:
    """A running second `dockerd`: where it listens, what it created, and how to stop and start it."""

    root: Path  # short path under /tmp: the socket lives in root/sock (unix paths stop at 108 bytes)
    block: ipaddress.IPv4Network
    suffix: str
    tls: TlsFiles | None = None
    tcp_port: int | None = None
    swarm: bool = False
    live_restore: bool = False  # containers keep running while dockerd is away (as on a host that drops off)
    process: subprocess.Popen[bytes] | None = None
    created_bridges: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        """The engine's unix socket."""
        return self.root / "sock" / "docker.sock"

    @property
    def unix_url(self) -> str:
        """`unix://` URL of the socket."""
        return f"unix://{self.socket}"

    @property
    def tcp_url(self) -> str:
        """`tcp://127.0.0.1:PORT` when TLS is on."""
        if self.tcp_port is None:
            raise RuntimeError("this engine has no TLS listener")
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def bridge(self) -> str:
        """The engine's default bridge interface (15 characters at most)."""
        return f"dmb{self.suffix}"

    @property
    def gwbridge(self) -> str:
        """The interface of its `docker_gwbridge` (Swarm only)."""
        return f"dmg{self.suffix}"

    def subnet(self, index: int) -> ipaddress.IPv4Network:
        """The index-th /24 of the engine's block."""
        return list(self.block.subnets(new_prefix=24))[index]

    def client(self, *, tls: bool = False, timeout: int = 120) -> docker.DockerClient:
        """A docker SDK client over the socket, or over TLS on 127.0.0.1 (blocks on first call)."""
        if tls:
            assert self.tls is not None
            config = TLSConfig(client_cert=(str(self.tls.cert), str(self.tls.key)), ca_cert=str(self.tls.ca),
                               verify=True)
            return tls_client(self.tcp_url, config, timeout=timeout)
        return docker.DockerClient(base_url=self.unix_url, timeout=timeout)

    def cli(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        """Run the docker CLI against this engine (blocks)."""
        return _run(["docker", "-H", self.unix_url, *args], input=input, check=check)

    def _argv(self) -> list[str]:
        argv = [
            "dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"), "-H", self.unix_url,
            # Never --bridge none, nor --default-address-pool: with either, dockerd deletes the link
            # named docker0 (the second at every restart), and the main engine can no longer run anything.
            # Its own networks come from Docker's default pools, which skip ranges a route already uses.
            "--bridge", self.bridge, "--iptables=false", "--ip-forward=false",
            "--log-level", "warn", "--storage-driver", "overlay2",
        ]
        if self.live_restore:
            argv.append("--live-restore")
        if self.tls is not None and self.tcp_port is not None:
            argv += ["-H", self.tcp_url, "--tlsverify", "--tlscacert", str(self.tls.ca),
                     "--tlscert", str(self.tls.server_cert), "--tlskey", str(self.tls.server_key)]
        return argv

    def start(self) -> None:
        """Start (or restart) the dockerd process on the same data and wait until it answers (blocks)."""
        if self.process is not None and self.process.poll() is None:
            return
        (self.root / "sock").mkdir(parents=True, exist_ok=True)
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(self._argv(), stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.1)
        raise TimeoutError(f"dockerd did not answer within {START_TIMEOUT}s: {self.log_tail()}")

    def answers(self) -> bool:
        """Whether the engine answers `GET /_ping` on its socket now (a raw socket, always closed; blocks)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            try:
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
            except OSError:
                return False
        return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dockerd (SIGTERM, its containerd with it), keeping its data; the engine goes away (blocks)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        """Stop and start again on the same data (blocks)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of dockerd's log."""
        path = self.root / "dockerd.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def load_image(self, image: str = BUSYBOX_IMAGE) -> None:
        """Copy an image from the main engine (`docker save | docker -H ... load`; blocks)."""
        saved = _run_bytes(["docker", "save", image])
        self.cli("load", input=saved)

    def init_swarm(self) -> None:
        """Make this engine a single-node Swarm manager on 127.0.0.1, its own gwbridge first (blocks)."""
        gw = self.subnet(1)
        self.cli("network", "create", "--driver", "bridge", "--subnet", str(gw),
                 "--gateway", str(gw.network_address + 1),
                 "--opt", f"com.docker.network.bridge.name={self.gwbridge}",
                 "--opt", "com.docker.network.bridge.enable_icc=false",
                 "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
                 "docker_gwbridge")
        self.created_bridges.append(self.gwbridge)
        # Own ports: another session's test swarm may hold 2377 and 4789.
        listen = free_port()
        self.cli("swarm", "init", "--advertise-addr", f"127.0.0.1:{listen}", "--listen-addr",
                 f"127.0.0.1:{listen}", "--data-path-addr", "127.0.0.1", "--data-path-port", str(_free_udp_port()),
                 "--default-addr-pool", str(self.subnet(64).supernet(new_prefix=18)),
                 "--default-addr-pool-mask-length", "24")
        self.swarm = True

    def _kill_leftovers(self) -> None:
        """Kill this engine's containerd and any container shim that outlived it, with the shim's
        processes first (a killed shim's container would run on, reparented to init)."""
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        address = f"{self.root}/exec/containerd/containerd.sock".encode()
        parents: dict[int, int] = {}
        shims: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if address in (entry / "cmdline").read_bytes():
                    shims.append(int(entry.name))
        doomed = set(shims)
        while True:
            more = {pid for pid, ppid in parents.items() if ppid in doomed} - doomed
            if not more:
                break
            doomed |= more
        for pid in sorted(doomed, key=lambda p: p in shims):  # children before their shims
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """Remove everything: swarm, containers, dockerd, mounts, data and interfaces (blocks)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(Exception):
                if self.swarm:
                    self.cli("swarm", "leave", "--force", check=False)
                with contextlib.closing(self.client(timeout=30)) as client:
                    for container in client.containers.list(all=True):
                        with contextlib.suppress(docker.errors.APIError):
                            container.remove(force=True)
        self.stop()
        self._kill_leftovers()
        _unmount_under(self.root)
        for name in [*self.created_bridges, self.bridge]:
            _run(["ip", "link", "del", name], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _run_bytes(argv: list[str]) -> bytes:
    result = subprocess.run(argv, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _unmount_under(root: Path) -> None:
    """Unmount every mount below root, deepest first (overlay layers, netns and shm of its containers)."""
    prefix = str(root.resolve()) + "/"
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        _run(["umount", "-l", point], check=False)


def start_engine(*, tls: bool = False, swarm: bool = False, image: str | None = BUSYBOX_IMAGE,
                 live_restore: bool = False) -> ExtraEngine:
    """Start a second dockerd (optionally TLS on 127.0.0.1, optionally a single-node Swarm) with `image` loaded.

    Blocks (seconds). The caller owns the engine and must `close()` it; prefer `extra_engine()`.
    """
    suffix = secrets.token_hex(3)
    root = Path(tempfile.mkdtemp(prefix="dm-eng-", dir="/tmp"))
    root.chmod(0o711)  # the socket's own mode (0660, group docker) decides who may use it
    engine: ExtraEngine | None = None
    try:
        with _LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            engine = ExtraEngine(root=root, block=_pick_block(), suffix=suffix, live_restore=live_restore)
            _run(["ip", "link", "add", engine.bridge, "type", "bridge"])
            net = engine.subnet(0)
            _run(["ip", "addr", "add", f"{net.network_address + 1}/{net.prefixlen}", "dev", engine.bridge])
            _run(["ip", "link", "set", engine.bridge, "up"])
        if tls:
            engine.tls = make_tls(root / "tls")
            engine.tcp_port = free_port()
        engine.start()
        if image:
            if image == BUSYBOX_IMAGE:
                ensure_busybox_image()
            engine.load_image(image)
        if swarm:
            engine.init_swarm()
        return engine
    except BaseException:
        if engine is not None:
            engine.close()
        else:
            shutil.rmtree(root, ignore_errors=True)
        raise


@contextlib.contextmanager
def extra_engine(*, tls: bool = False, swarm: bool = False, image: str | None = BUSYBOX_IMAGE,
                 live_restore: bool = False) -> Iterator[ExtraEngine]:
    """`start_engine()` as a context manager that always removes what it created (blocks)."""
    engine = start_engine(tls=tls, swarm=swarm, image=image, live_restore=live_restore)
    try:
        yield engine
    finally:
        engine.close()
