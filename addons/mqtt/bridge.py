"""The broker connection: discovery and state out, commands in, reconnect with backoff.

Nothing here blocks the rest of the appliance: events only mark a device dirty and wake the
publisher; while the broker is away they pile up as a set of names, and the next connection
publishes everything again (its retained copies may be gone with the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from addons.backup.contract import BACKUPS
from addons.hosts.contract import HOSTS
from addons.stacks.contract import STACKS
from appliance.core import Appliance
from appliance.errors import Forbidden, NotFound, ValidationFailed

from .entities import APPLIANCE, HOST, PAYLOAD_INSTALL, PAYLOAD_PRESS, STACK, Discovery, Entity, Topics
from .schema import Broker
from .states import backup_state, dumps, host_states, stack_states

_LOGGER = logging.getLogger(__name__)
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
COALESCE = 0.05  # seconds: a burst of events becomes one publish per device
PUBLISH_WINDOW = 32  # messages in flight at once during a full publish


@dataclass(frozen=True)
class Command:
    """What a command topic does: the service it calls and the data each accepted payload adds."""

    service: str
    payloads: dict[str, dict[str, Any]]


COMMANDS: dict[tuple[str, str], Command] = {
    (STACK, "install"): Command("stacks.deploy", {PAYLOAD_INSTALL: {}}),
    (STACK, "rollback"): Command("stacks.rollback", {PAYLOAD_PRESS: {}}),
    (STACK, "auto_deploy/set"): Command("stacks.auto_deploy", {"ON": {"auto_deploy": True},
                                                               "OFF": {"auto_deploy": False}}),
    (HOST, "install"): Command("hosts.update", {PAYLOAD_INSTALL: {}}),
    (HOST, "check"): Command("hosts.check", {PAYLOAD_PRESS: {}}),
}


class MqttBridge:
    """Publishes the appliance, its stacks and hosts to Home Assistant and carries out its commands."""

    def __init__(self, app: Appliance, conf: dict[str, Any]) -> None:
        """Read the `mqtt:` block; nothing connects before `async_start`."""
        self.app = app
        self.broker = Broker.from_conf(conf, f"dockmaster-{app.name}")
        node = re.sub(r"[^A-Za-z0-9_-]", "_", self.broker.client_id)
        self.topics = Topics(conf["discovery_prefix"], conf["base_topic"], node)
        self.discovery = Discovery(self.topics, app.name, app.version, app.link)
        self.command_scope: str = conf["command_scope"]
        self.actor = f"mqtt:{self.broker.client_id}"
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._dirty: set[tuple[str, str]] = set()
        self._full = False
        self._wake = asyncio.Event()
        self._sent: dict[str, bytes] = {}  # topic -> digest of the payload published on this connection
        self._wanted: set[str] = set()  # discovery config topics of what is configured now
        self._stopping = False
        self.backoff_max = BACKOFF_MAX  # the longest wait between connection attempts

    # --- what exists ------------------------------------------------------------------------

    def stack_names(self) -> list[str]:
        """The configured stacks (none when the stacks addon is not loaded)."""
        catalog = self.app.data.get(STACKS)
        return sorted(catalog.names()) if catalog is not None else []

    def host_names(self) -> list[str]:
        """The configured hosts (none when the hosts addon is not loaded)."""
        fleet = self.app.data.get(HOSTS)
        return sorted(fleet.conf) if fleet is not None else []

    def devices(self) -> list[tuple[str, str]]:
        """Every device: the appliance, each stack, each host."""
        return [(APPLIANCE, ""), *((STACK, n) for n in self.stack_names()), *((HOST, n) for n in self.host_names())]

    def entities(self) -> list[Entity]:
        """Every discovery config to publish."""
        result = self.discovery.device(APPLIANCE, backup=self.app.data.get(BACKUPS) is not None)
        for name in self.stack_names():
            result += self.discovery.device(STACK, name)
        for name in self.host_names():
            result += self.discovery.device(HOST, name)
        return result

    async def async_states(self, kind: str, name: str) -> dict[str, str]:
        """Topic -> payload of one device's states."""
        if kind == APPLIANCE:
            active = sorted(self.app.runs.active.values(), key=lambda r: r.id)
            failed = sorted(self.app.addon_errors)
            state: dict[str, Any] = {"active_runs": len(active), "runs": [f"{r.kind} {r.target}" for r in active][:20],
                                     "failed_addons": len(failed), "failed": failed}
            backups = self.app.data.get(BACKUPS)
            if backups is not None:
                state["backup"] = backup_state(await backups.async_last())
            return {self.topics.state(APPLIANCE, ""): dumps(state)}
        if kind == STACK:
            catalog = self.app.data.get(STACKS)
            if catalog is None:
                return {}
            device, update = stack_states(await catalog.async_overview(name), self.app.link(f"/stacks/{name}"))
        else:
            fleet = self.app.data.get(HOSTS)
            if fleet is None:
                return {}
            device, update = host_states(fleet, name)
        return {self.topics.state(kind, name): dumps(device), self.topics.update(kind, name): dumps(update)}

    # --- changes from the event bus ---------------------------------------------------------

    def mark(self, kind: str, name: str = "") -> None:
        """A device's state may have changed: publish it soon (or on the next connection)."""
        self._dirty.add((kind, name))
        self._wake.set()

    def mark_all(self) -> None:
        """Publish everything again: discovery and every state (Home Assistant restarted)."""
        self._full = True
        self._wake.set()

    # --- lifecycle --------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Connect in the background; a missing broker is retried forever with backoff."""
        self._stopping = False
        self._task = asyncio.create_task(self._async_run(), name="mqtt-bridge")

    async def async_stop(self) -> None:
        """Mark the appliance offline (a clean disconnect sends no last will), then disconnect."""
        self._stopping = True
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.publish(self.topics.availability, "offline", qos=1, retain=True), 2)
        for task in [*self._jobs, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._jobs, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None

    async def _async_run(self) -> None:
        delay = BACKOFF_MIN
        tls = await self.app.async_run_blocking(self._tls_context) if self.broker.tls else None
        where = f"{self.broker.host}:{self.broker.port}"
        while not self._stopping:
            try:
                async with self._client_for(tls) as client:
                    self._client = client
                    self.connections += 1
                    delay = BACKOFF_MIN
                    _LOGGER.info("MQTT: connected to %s as %s", where, self.broker.client_id)
                    await self._async_session(client)
            except aiomqtt.MqttError as err:
                level = logging.WARNING if self.connected.is_set() or self.connections == 0 else logging.DEBUG
                _LOGGER.log(level, "MQTT: broker %s unreachable (%s); retrying in %.0fs", where, err, delay)
            finally:
                self._client = None
                self.connected.clear()
            if self._stopping:
                return
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # jitter, not a secret
            delay = min(delay * 2, self.backoff_max)

    def _client_for(self, tls: ssl.SSLContext | None) -> aiomqtt.Client:
        will = aiomqtt.Will(self.topics.availability, "offline", qos=1, retain=True)
        return aiomqtt.Client(self.broker.host, self.broker.port, username=self.broker.username,
                              password=self.broker.password, identifier=self.broker.client_id, will=will,
                              tls_context=tls, keepalive=self.broker.keepalive, timeout=10)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.broker.ca) if self.broker.ca else None)
        if self.broker.cert:
            context.load_cert_chain(str(self.broker.cert), str(self.broker.key) if self.broker.key else None)
        if not self.broker.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _async_session(self, client: aiomqtt.Client) -> None:
        """One connection: subscribe, announce, publish everything, then serve until it drops."""
        self._sent.clear()
        await client.subscribe([(self.topics.birth, 1), (self.topics.config_filter, 1),
                                *((self.topics.command(kind, "+", action), 1) for kind, action in COMMANDS)])
        await client.publish(self.topics.availability, "online", qos=1, retain=True)
        await self._async_publish_all(client)
        self.connected.set()
        publisher = asyncio.create_task(self._async_publisher(client))
        listener = asyncio.create_task(self._async_listen(client))
        try:
            done, _ = await asyncio.wait({publisher, listener}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (publisher, listener):
                task.cancel()
            await asyncio.gather(publisher, listener, return_exceptions=True)

    # --- publishing -------------------------------------------------------------------------

    async def _async_publish_many(self, client: aiomqtt.Client, messages: Iterable[tuple[str, str]]) -> None:
        """Publish retained messages, skipping those already sent on this connection unchanged.

        A few workers share one iterator: a full publish keeps PUBLISH_WINDOW messages in flight
        instead of one pending coroutine per message (the peak memory of a large fleet).
        """
        pending = iter(messages)

        async def worker() -> None:
            for topic, payload in pending:
                digest = hashlib.blake2b(payload.encode(), digest_size=16).digest()
                if self._sent.get(topic) == digest:
                    continue
                await client.publish(topic, payload, qos=1, retain=True)
                self._sent[topic] = digest

        await asyncio.gather(*(worker() for _ in range(PUBLISH_WINDOW)))

    async def _async_publish_all(self, client: aiomqtt.Client) -> None:
        self._full = False
        self._sent.clear()
        entities = self.entities()
        self._wanted = {self.topics.config(e.platform, e.object_id) for e in entities}
        await self._async_publish_many(client, ((self.topics.config(e.platform, e.object_id), dumps(e.config))
                                                for e in entities))
        self._dirty.update(self.devices())
        await self._async_publish_dirty(client)

    async def _async_publish_dirty(self, client: aiomqtt.Client) -> None:
        dirty, self._dirty = self._dirty, set()
        messages: dict[str, str] = {}
        for kind, name in sorted(dirty):
            try:
                messages.update(await self.async_states(kind, name))
            except NotFound:
                continue  # removed since it was marked
            except Exception:
                _LOGGER.exception("MQTT: cannot read the state of %s %s", kind, name)
        await self._async_publish_many(client, messages.items())

    async def _async_publisher(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(COALESCE)
            self._wake.clear()
            if self._full:
                await self._async_publish_all(client)
            else:
                await self._async_publish_dirty(client)

    # --- commands ---------------------------------------------------------------------------

    async def _async_listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
            if topic == self.topics.birth:
                if payload == b"online":
                    _LOGGER.info("MQTT: Home Assistant is online; publishing everything again")
                    self.mark_all()
            elif message.topic.matches(self.topics.config_filter):
                if payload and topic not in self._wanted:
                    _LOGGER.info("MQTT: clearing the discovery entry %s (no longer configured)", topic)
                    await client.publish(topic, b"", qos=1, retain=True)
            else:
                self._spawn(self.async_command(topic, payload))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def async_command(self, topic: str, raw: bytes) -> None:
        """Carry out one command publish, through the same service, scope check and audit as the API."""
        prefix = f"{self.topics.base}/"
        parts = topic[len(prefix):].split("/", 2) if topic.startswith(prefix) else []
        command = COMMANDS.get((parts[0], parts[2])) if len(parts) == 3 else None
        try:
            text = raw.decode().strip()
        except UnicodeDecodeError:
            text = None
        if command is None or text is None or text not in command.payloads:
            _LOGGER.warning("MQTT: ignored a malformed command on %s: %r", topic, raw[:100])
            return
        kind, name = parts[0], parts[1]
        if self.command_scope == "read":
            _LOGGER.warning("MQTT: refused %s for %s %s: command_scope is read (MQTT may not command)",
                            command.service, kind, name)
            return
        try:
            await self.app.services.async_call(
                command.service, {"name": name, **command.payloads[text]}, actor=self.actor,
                source=f"mqtt {self.broker.host}:{self.broker.port}", trigger="mqtt", scopes=(self.command_scope,))
        except (Forbidden, NotFound, ValidationFailed) as err:
            _LOGGER.warning("MQTT: refused %s for %s %s: %s", command.service, kind, name, err)
        except Exception:
            _LOGGER.exception("MQTT: %s for %s %s failed", command.service, kind, name)
        else:
            _LOGGER.info("MQTT: %s %s %s by %s", command.service, kind, name, self.actor)
        self.mark(kind, name)
