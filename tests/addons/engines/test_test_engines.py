"""The extra engines the tests start: reachable as promised, and gone without a trace afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import asyncssh
import docker
import pytest
import requests
from docker.tls import TLSConfig

from tests.support.dockerd import ExtraEngine, extra_engine, tls_client
from tests.support.engines import SshEngine
from tests.support.images import BUSYBOX_IMAGE

pytestmark = pytest.mark.docker

HTTPD = ["sh", "-c", "mkdir -p /www && echo $MARK > /www/index.html && exec httpd -f -p 8080 -h /www"]


def serve(client: docker.DockerClient, mark: str) -> tuple[Any, str]:
    """Run busybox httpd on a port published on 127.0.0.1; returns the container and what GET / says."""
    container = client.containers.run(BUSYBOX_IMAGE, HTTPD, detach=True, environment={"MARK": mark},
                                      ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        for _ in range(100):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return container, resp.read().decode().strip()
            container.reload()
            assert container.status in ("created", "running"), container.logs()
        raise AssertionError("httpd never answered")
    except BaseException:
        container.remove(force=True)
        raise


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def interfaces() -> set[str]:
    """Names of this machine's network interfaces."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_tls_engine_runs_a_container_reached_with_client_certificates(
    tls_engine: ExtraEngine, docker_client: docker.DockerClient
) -> None:
    assert tls_engine.tls is not None
    config = TLSConfig(client_cert=(str(tls_engine.tls.cert), str(tls_engine.tls.key)),
                       ca_cert=str(tls_engine.tls.ca), verify=True)
    client = tls_client(tls_engine.tcp_url, config)
    try:
        assert client.info()["DockerRootDir"] == str(tls_engine.root / "data")
        container, body = serve(client, "on-the-tls-engine")
        container.remove(force=True)
        assert body == "on-the-tls-engine"
    finally:
        client.close()
    # The main engine is untouched: it still runs containers and publishes their ports.
    container, body = serve(docker_client, "on-the-main-engine")
    container.remove(force=True)
    assert body == "on-the-main-engine"


def test_tls_engine_refuses_a_client_without_a_certificate(tls_engine: ExtraEngine) -> None:
    assert tls_engine.tls is not None
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{tls_engine.tcp_port}/version", verify=str(tls_engine.tls.ca), timeout=10)
    context = ssl.create_default_context(cafile=str(tls_engine.tls.ca))
    context.load_cert_chain(str(tls_engine.tls.cert), str(tls_engine.tls.key))
    with urllib.request.urlopen(f"https://127.0.0.1:{tls_engine.tcp_port}/_ping", context=context,
                                timeout=10) as resp:
        assert resp.read() == b"OK"


def test_swarm_engine_is_a_single_node_manager_on_its_own_addresses(swarm_engine: ExtraEngine) -> None:
    client = swarm_engine.client()
    try:
        swarm = client.info()["Swarm"]
        assert swarm["LocalNodeState"] == "active" and swarm["ControlAvailable"] is True
        assert swarm["Nodes"] == 1
        gateway = client.networks.get("docker_gwbridge").attrs
        assert gateway["Options"]["com.docker.network.bridge.name"] == swarm_engine.gwbridge
        assert gateway["IPAM"]["Config"][0]["Subnet"] == str(swarm_engine.subnet(1))
        assert {swarm_engine.bridge, swarm_engine.gwbridge} <= interfaces()
        assert "docker0" in interfaces()
    finally:
        client.close()


def test_an_engine_stops_and_starts_on_its_data_and_leaves_nothing_behind(
    docker_client: docker.DockerClient,
) -> None:
    with extra_engine(swarm=True) as engine:
        client = engine.client(timeout=10)
        client.containers.run(BUSYBOX_IMAGE, ["sleep", "600"], name="kept", detach=True)
        engine.stop()
        # Not client.ping(): the SDK leaks the socket of a refused connection (a ResourceWarning).
        assert not engine.answers()
        engine.start()
        assert "docker0" in interfaces(), "the restart deleted the main engine's bridge"
        assert client.containers.get("kept").status == "exited"  # the container outlived its engine
        client.containers.get("kept").start()
        assert client.info()["Swarm"]["LocalNodeState"] == "active"
        made = {engine.bridge, engine.gwbridge}
        assert made <= interfaces()
        pid = engine.process.pid if engine.process else 0
        root = engine.root
        client.close()
    assert not (made & interfaces()), "an interface outlived its engine"
    assert "docker0" in interfaces()
    assert not root.exists()
    assert not Path(f"/proc/{pid}").exists()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(root).encode() in _cmdline(p)]
    assert not left, "a process of the engine outlived it"
    assert str(root) not in Path("/proc/self/mountinfo").read_text()
    container, body = serve(docker_client, "still-serving")
    container.remove(force=True)
    assert body == "still-serving"


async def test_ssh_engine_socket_forwarded_over_ssh_answers_the_docker_sdk(
    ssh_engine: SshEngine, tmp_path: Path
) -> None:
    async with asyncssh.connect(
        "127.0.0.1", port=ssh_engine.port, username=ssh_engine.user, client_keys=[str(ssh_engine.key)],
        known_hosts=str(ssh_engine.known_hosts), agent_path=None,
    ) as conn:
        # The SSH user reaches the socket itself (docker group), and the docker CLI is there too.
        result = await conn.run("docker version --format '{{.Server.Version}}'", check=False)
        assert result.exit_status == 0, result.stderr
        direct = ssh_engine.engine.client()
        try:
            assert str(result.stdout).strip() == direct.version()["Version"]
            assert direct.info()["DockerRootDir"] == str(ssh_engine.engine.root / "data")
        finally:
            direct.close()
        local = tmp_path / "engine.sock"
        listener = await conn.forward_local_path(str(local), ssh_engine.socket)
        try:
            def use_engine() -> tuple[bool, str]:
                client = docker.DockerClient(base_url=f"unix://{local}", timeout=30)
                try:
                    return client.ping(), client.containers.run(BUSYBOX_IMAGE, ["echo", "over ssh"],
                                                                remove=True).decode().strip()
                finally:
                    client.close()

            pong, said = await asyncio.to_thread(use_engine)
        finally:
            listener.close()
            await listener.wait_closed()
    assert pong is True
    assert said == "over ssh"
