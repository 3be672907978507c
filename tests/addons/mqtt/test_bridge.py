"""The bridge on a real Mosquitto broker: discovery, retained state, TLS, commands refused, outages, last will."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from addons.mqtt.const import BRIDGE_KEY
from addons.mqtt.schema import CONFIG_SCHEMA
from addons.mqtt.schema import Broker as BrokerConf
from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer

from .conftest import PASSWORD, Broker, WatcherFactory, connected, mqtt_block
from .ha_schema import validate


async def _start(make_client: Any, server: Broker, **extra: Any) -> Any:
    client = await make_client(mqtt_block(server, **extra), secrets={"mqtt_password": PASSWORD})
    app = client.server.app[APPLIANCE_KEY]
    assert "mqtt" in app.loaded_addons, app.addon_errors
    bridge = app.data[BRIDGE_KEY]
    await connected(bridge)
    return client, app, bridge


def test_schema_defaults_and_broker_urls() -> None:
    conf = CONFIG_SCHEMA({"broker": "mqtts://ha.lan"})
    assert conf["discovery_prefix"] == "homeassistant"
    assert conf["base_topic"] == "dockmaster"
    assert conf["command_scope"] == "deploy"
    broker = BrokerConf.from_conf(conf, "dockmaster-x")
    assert (broker.host, broker.port, broker.tls, broker.client_id) == ("ha.lan", 8883, True, "dockmaster-x")
    assert BrokerConf.from_conf(CONFIG_SCHEMA({"broker": "mqtt://ha.lan"}), "x").port == 1883
    for bad in ("http://ha.lan", "mqtt://", "mqtt://u:p@ha.lan", "ha.lan:1883"):
        with pytest.raises(vol.Invalid):
            CONFIG_SCHEMA({"broker": bad})
    with pytest.raises(vol.Invalid):
        CONFIG_SCHEMA({"broker": "mqtt://ha.lan", "command_scope": "root"})
    with pytest.raises(vol.Invalid):
        CONFIG_SCHEMA({"broker": "mqtt://ha.lan", "base_topic": "dock/#"})


async def test_discovery_availability_and_retained_state(make_client: Any, broker: Broker,
                                                         watch: WatcherFactory) -> None:
    _, _, bridge = await _start(make_client, broker)
    ha = await watch()  # subscribes after the publish: only retained copies can arrive
    await ha.wait_for(lambda: ha.seen["dockmaster/status"] == b"online")
    configs = await ha.wait_for(lambda: [t for t in ha.seen if t.endswith("/config")
                                         and t.startswith("homeassistant/sensor/dm-test/")] or None)
    assert len(configs) == 2
    unique_ids = set()
    for topic in configs:
        platform = topic.split("/")[1]
        config = ha.json(topic)
        validate(platform, config)
        unique_ids.add(config["unique_id"])
        assert config["availability"] == [{"topic": "dockmaster/status"}]
        assert config["device"]["identifiers"] == ["dm-test"]
    assert len(unique_ids) == len(configs)
    state = await ha.wait_for(lambda: ha.json("dockmaster/appliance/state"))
    assert state["failed_addons"] == 0 and isinstance(state["active_runs"], int)
    assert bridge.connections == 1


async def test_tls_listener_with_the_broker_ca(make_client: Any, broker: Broker, watch: WatcherFactory) -> None:
    _, _, bridge = await _start(make_client, broker, broker=broker.url(tls=True), tls={"ca": str(broker.ca)})
    assert bridge.broker.tls
    ha = await watch()
    await ha.wait_for(lambda: ha.seen["dockmaster/status"] == b"online")


async def test_malformed_commands_are_logged_and_ignored(make_client: Any, broker: Broker, watch: WatcherFactory,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    _, app, bridge = await _start(make_client, broker)
    ha = await watch()
    caplog.set_level(logging.WARNING, logger="addons.mqtt")
    await ha.client.publish("dockmaster/stack/web/install", b"\xff\xfe", qos=1)
    await ha.client.publish("dockmaster/stack/web/rollback", "yes please", qos=1)
    await ha.client.publish("dockmaster/host/db/install", "install", qos=1)  # no hosts addon: no service
    for _ in range(50):
        if caplog.text.count("MQTT:") >= 3:
            break
        await asyncio.sleep(0.1)
    assert caplog.text.count("ignored a malformed command") == 2, caplog.text
    assert "refused hosts.update for host db" in caplog.text
    assert bridge.connected.is_set()  # still serving
    assert await app.runs.list(limit=5) == []


async def test_broker_outage_reconnects_and_republishes(make_client: Any, broker: Broker,
                                                        watch: WatcherFactory) -> None:
    client, _, bridge = await _start(make_client, broker)
    broker.stop()  # persistence is off: every retained message is gone with it
    for _ in range(50):
        if not bridge.connected.is_set():
            break
        await asyncio.sleep(0.1)
    assert not bridge.connected.is_set()
    # Meanwhile the rest of the appliance carries on.
    resp = await asyncio.wait_for(client.get("/api/health"), 2)
    assert resp.status == 200
    await asyncio.sleep(2)
    broker.start()
    await connected(bridge, timeout=20)
    assert bridge.connections == 2
    ha = await watch()
    await ha.wait_for(lambda: ha.seen["dockmaster/status"] == b"online")
    await ha.wait_for(lambda: ha.json("dockmaster/appliance/state"))
    assert any(t.startswith("homeassistant/sensor/dm-test/") for t in ha.seen)


async def test_home_assistant_birth_republishes(make_client: Any, broker: Broker, watch: WatcherFactory) -> None:
    await _start(make_client, broker)
    ha = await watch()
    await ha.wait_for(lambda: ha.seen["dockmaster/appliance/state"])
    ha.history.clear()
    await ha.client.publish("homeassistant/status", "online", qos=1)
    await ha.wait_for(lambda: any(t.endswith("/config") for t, _ in ha.history), timeout=5)
    await ha.wait_for(lambda: any(t == "dockmaster/appliance/state" for t, _ in ha.history), timeout=5)


async def test_last_will_marks_offline_and_stop_says_offline(make_client: Any, broker: Broker,
                                                             watch: WatcherFactory) -> None:
    _, _, bridge = await _start(make_client, broker)
    ha = await watch("dockmaster/status")
    await ha.wait_for(lambda: ha.seen["dockmaster/status"] == b"online")
    # The connection dies without a DISCONNECT (as when the process is killed): the broker sends the will.
    sock = bridge._client._client.socket()  # type: ignore[union-attr]
    sock.shutdown(socket.SHUT_RDWR)
    await ha.wait_for(lambda: (("dockmaster/status", b"offline") in ha.history), timeout=10)
    await connected(bridge, timeout=20)  # and it comes back
    await ha.wait_for(lambda: ha.history[-1] == ("dockmaster/status", b"online"), timeout=10)
    # A clean stop says offline itself (a clean disconnect sends no will).
    await bridge.async_stop()
    await ha.wait_for(lambda: ha.history[-1] == ("dockmaster/status", b"offline"), timeout=5)
    assert not bridge.connected.is_set()


async def test_removed_stacks_have_their_discovery_cleared(make_client: Any, broker: Broker,
                                                          watch: WatcherFactory) -> None:
    ha = await watch()
    stale = "homeassistant/update/dm-test/stack_gone_update/config"
    await ha.client.publish(stale, '{"name": "Update"}', qos=1, retain=True)
    await ha.wait_for(lambda: ha.seen[stale])
    await _start(make_client, broker)
    await ha.wait_for(lambda: ha.seen[stale] == b"", timeout=5)
    fresh = await watch(identifier="home-assistant-2")  # a new subscriber gets no stale retained copy
    await fresh.wait_for(lambda: fresh.seen["dockmaster/status"] == b"online")
    assert stale not in fresh.seen


async def test_last_backup_sensor_follows_backups(make_client: Any, broker: Broker, watch: WatcherFactory,
                                                  tmp_path: Path) -> None:
    client = await make_client(mqtt_block(broker) + "backup:\n  to: archives\n", secrets={"mqtt_password": PASSWORD})
    app = client.server.app[APPLIANCE_KEY]
    assert {"mqtt", "backup"} <= set(app.loaded_addons), app.addon_errors
    await connected(app.data[BRIDGE_KEY])
    ha = await watch()
    sensor = ha.json(await ha.wait_for(lambda: "homeassistant/sensor/dm-test/appliance_last_backup/config"
                                       if "homeassistant/sensor/dm-test/appliance_last_backup/config" in ha.seen
                                       else None))
    validate("sensor", sensor)
    assert sensor["device_class"] == "timestamp" and sensor["state_topic"] == "dockmaster/appliance/state"
    state = await ha.wait_for(lambda: ha.json("dockmaster/appliance/state"))
    assert state["backup"] == {"time": None, "name": None, "size": None, "result": "never", "error": None}

    resp = await client.post("/api/v1/backups", headers=bearer("admin"))
    assert resp.status == 201, await resp.text()
    made = (await resp.json())["backup"]
    backup = await ha.wait_for(lambda: ha.json("dockmaster/appliance/state")["backup"]["name"] == made["name"]
                               and ha.json("dockmaster/appliance/state")["backup"], timeout=2)
    assert backup["result"] == "succeeded" and backup["size"] == made["size"] and backup["time"].startswith("20")

    # The folder cannot be made: the attempt fails, the sensor keeps the archive and says so.
    shutil.rmtree(tmp_path / "archives")
    (tmp_path / "archives").write_text("not a folder")
    resp = await client.post("/api/v1/backups", headers=bearer("admin"))
    assert resp.status >= 400
    failed = await ha.wait_for(lambda: ha.json("dockmaster/appliance/state")["backup"]["result"] == "failed"
                               and ha.json("dockmaster/appliance/state")["backup"], timeout=2)
    assert failed["name"] == made["name"] and failed["error"]
