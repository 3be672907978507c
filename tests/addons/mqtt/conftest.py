"""A real Mosquitto broker on 127.0.0.1 (password and TLS listeners), a Home Assistant-like subscriber, and the app."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from addons.mqtt.bridge import MqttBridge
from appliance.core import Appliance
from tests.addons.stacks.conftest import (  # noqa: F401 - the stacks fixtures (real git remote, compose cleanup)
    cleanup_projects,
    make_client,
    remote,
    stacks_app,
    suffix,
)

USER, PASSWORD = "dockmaster", "broker-secret-1"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockmaster test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


class Broker:
    """Debian's mosquitto as a child process: a password listener and a TLS listener, stoppable and restartable."""

    def __init__(self, folder: Path) -> None:
        """Write the config, password file and certificates; `start()` runs it."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port, self.tls_port = free_port(), free_port()
        self.ca, cert, key = _make_certs(folder)
        passwords = folder / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD], check=True,
                       capture_output=True)
        passwords.chmod(0o600)
        # Started as root, mosquitto drops to the user `mosquitto`, which cannot read tmp_path.
        user = "root" if os.getuid() == 0 else ""
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join([
            *([f"user {user}"] if user else []),
            "persistence false", "log_dest stderr", "log_type error", "log_type warning",
            "allow_anonymous false", f"password_file {passwords}",
            f"listener {self.port} 127.0.0.1",
            f"listener {self.tls_port} 127.0.0.1", f"cafile {self.ca}", f"certfile {cert}", f"keyfile {key}",
            "",
        ]))
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([binary, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")

    def stop(self) -> None:
        """Stop the broker (its retained messages go with it: persistence is off)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def url(self, *, tls: bool = False) -> str:
        """The broker URL for the `mqtt:` block."""
        return f"mqtts://localhost:{self.tls_port}" if tls else f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running broker for one test."""
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail("Debian's mosquitto is not installed (scripts/setup installs it)")
    server = Broker(tmp_path / "broker")
    server.start()
    yield server
    server.stop()


class Watcher:
    """Subscribes like Home Assistant: keeps the newest payload of every topic and waits for conditions."""

    def __init__(self, client: aiomqtt.Client) -> None:
        """Collect from `client` (already subscribed)."""
        self.client = client
        self.seen: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Record every message."""
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self.seen[message.topic.value] = payload
            self.history.append((message.topic.value, payload))
            self._changed.set()

    def json(self, topic: str) -> Any:
        """The newest payload of a topic, parsed."""
        return json.loads(self.seen[topic])

    async def wait_for(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `check()` is truthy (re-checked on each message)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(KeyError):
                result = check()
                if result:
                    return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; topics seen: {sorted(self.seen)}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))


WatcherFactory = Callable[..., Awaitable[Watcher]]


@pytest.fixture
async def watch(broker: Broker) -> AsyncIterator[WatcherFactory]:
    """Connect a subscriber to the broker (like Home Assistant), subscribed to `topics`."""
    stack = contextlib.AsyncExitStack()
    tasks: list[asyncio.Task[None]] = []

    async def _watch(*topics: str, identifier: str = "home-assistant") -> Watcher:
        client = await stack.enter_async_context(aiomqtt.Client(
            "127.0.0.1", broker.port, username=USER, password=PASSWORD, identifier=identifier))
        for topic in topics or ("homeassistant/#", "dockmaster/#"):
            await client.subscribe(topic, qos=1)
        watcher = Watcher(client)
        tasks.append(asyncio.create_task(watcher.run()))
        return watcher

    yield _watch
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await stack.aclose()


def mqtt_block(server: Broker, **extra: Any) -> str:
    """The `mqtt:` block as YAML text, its password through `!secret mqtt_password`."""
    conf = {"broker": server.url(), "username": USER, "client_id": "dm-test", **extra}
    text = yaml.safe_dump({"mqtt": conf}, sort_keys=False)
    return text.rstrip("\n") + "\n  password: !secret mqtt_password\n"


MqttApp = Callable[..., Awaitable[tuple[TestClient, Appliance, MqttBridge]]]


async def connected(bridge: MqttBridge, timeout: float = 15.0) -> None:
    """Wait until the bridge has published everything on a connection."""
    await asyncio.wait_for(bridge.connected.wait(), timeout)
