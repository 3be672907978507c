"""Stacks in Home Assistant over a real broker: discovery per stack, Install deploys a real stack, scopes hold."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from addons.mqtt.const import BRIDGE_KEY
from addons.mqtt.entities import APPLIANCE, STACK
from addons.stacks.contract import STACKS as STACKS_CATALOG
from tests.addons.stacks.conftest import GitRemote, StackApp, httpd_compose, sync, wait_idle
from tests.conftest import bearer, sign_in

from .conftest import PASSWORD, USER, Broker, WatcherFactory, connected
from .ha_schema import validate, validate_update_state

pytestmark = pytest.mark.docker


def _mqtt(broker: Broker, **extra: Any) -> dict[str, Any]:
    return {"broker": broker.url(), "username": USER, "password": PASSWORD, "client_id": "dm-test", **extra}


async def _app(stacks_app: StackApp, broker: Broker, name: str, **mqtt: Any) -> Any:
    client, app = await stacks_app([{"name": name, "repo": "infra", "path": "stacks/web", "health_timeout": "20s",
                                     "auto_deploy": False}], mqtt=_mqtt(broker, **mqtt))
    assert "mqtt" in app.loaded_addons, app.addon_errors
    bridge = app.data[BRIDGE_KEY]
    await connected(bridge)
    return client, app, bridge


async def test_install_deploys_the_stack_audited_as_mqtt(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, suffix: str, broker: Broker,
    watch: WatcherFactory,
) -> None:
    name = f"web-{suffix}"
    sha = remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "v1")}, "Serve v1")
    client, app, _ = await _app(stacks_app, broker, name)
    ha = await watch()
    update_topic = f"dockmaster/stack/{name}/update"
    # Discovery: six entities on one device, each valid for Home Assistant.
    configs = await ha.wait_for(lambda: [t for t in ha.seen if f"/dm-test/stack_{name}_" in t
                                         and t.endswith("/config")] if len(ha.seen) > 8 else None)
    assert sorted(t.split("/")[1] for t in configs) == ["binary_sensor", "button", "sensor", "sensor", "switch",
                                                        "update"]
    for topic in configs:
        validate(topic.split("/")[1], ha.json(topic))
        assert ha.json(topic)["device"]["identifiers"] == [f"dm-test_stack_{name}"]
    update_config = ha.json(f"homeassistant/update/dm-test/stack_{name}_update/config")
    # Never deployed (auto_deploy is off): Home Assistant offers the newest commit.
    update = await ha.wait_for(lambda: ha.json(update_topic))
    validate_update_state(update)
    assert "installed_version" not in update  # unknown: left out (Home Assistant rejects a null)
    assert update["latest_version"] == sha[:12]
    assert update["release_summary"] == "- Serve v1"
    assert ha.json(f"dockmaster/stack/{name}/state")["auto_deploy"] is False

    await ha.client.publish(update_config["command_topic"], update_config["payload_install"], qos=1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = await app.runs.list(target=name, limit=5)
        if runs and runs[0]["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    finished = time.monotonic()
    assert runs[0]["kind"] == "deploy" and runs[0]["status"] == "succeeded", runs[0]
    assert runs[0]["actor"] == "mqtt:dm-test"
    await ha.wait_for(lambda: ha.json(update_topic)["installed_version"] == sha[:12], timeout=1.0)
    state_topic = f"dockmaster/stack/{name}/state"
    await ha.wait_for(lambda: ha.json(state_topic)["last_result"] == "succeeded", timeout=1.0)
    assert time.monotonic() - finished <= 1.0
    assert ha.json(state_topic)["problem"] == "OFF"
    assert ha.json(update_topic)["latest_version"] == sha[:12]  # up to date: Home Assistant offers nothing
    await wait_idle(app)
    resp = await client.get("/api/v1/audit", headers=bearer("admin"))
    text = await resp.text()
    assert "mqtt:dm-test" in text and "stack.deploy" in text, text[:500]

    # New commits: the summary lists every one that touches the stack's folder, newest first.
    remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "v2")}, "Serve v2")
    remote.commit({"stacks/other/compose.yaml": "services: {}\n"}, "Another stack")
    remote.commit({"stacks/web/.env": "COLOR=blue\n"}, "Paint it blue")
    await sync(app)
    update = await ha.wait_for(lambda: ha.json(update_topic)["latest_version"] != sha[:12] and ha.json(update_topic),
                               timeout=5)
    validate_update_state(update)
    assert update["installed_version"] == sha[:12]
    assert update["release_summary"] == "- Paint it blue\n- Serve v2"
    assert update["release_url"].endswith(f"/stacks/{name}")
    state = ha.json(state_topic)
    assert state["commits"] == ["Paint it blue", "Serve v2"] and state["pending_commits"] == 2

    # The switch turns auto_deploy on through stacks.auto_deploy, and the state follows.
    await ha.client.publish(f"dockmaster/stack/{name}/auto_deploy/set", "ON", qos=1)
    await ha.wait_for(lambda: ha.json(f"dockmaster/stack/{name}/state")["auto_deploy"] is True, timeout=5)


async def test_read_scope_refuses_install(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, suffix: str, broker: Broker,
    watch: WatcherFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"web-{suffix}"
    remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "v1")}, "Serve v1")
    _, app, _ = await _app(stacks_app, broker, name, command_scope="read")
    caplog.set_level(logging.WARNING, logger="addons.mqtt")
    ha = await watch()
    await ha.client.publish(f"dockmaster/stack/{name}/install", "install", qos=1)
    for _ in range(30):
        if "command_scope is read" in caplog.text:
            break
        await asyncio.sleep(0.1)
    assert f"refused stacks.deploy for stack {name}: command_scope is read" in caplog.text
    await asyncio.sleep(0.5)
    assert [r for r in await app.runs.list(target=name, limit=5) if r["kind"] == "deploy"] == []


async def test_broker_outage_of_30s_during_a_deploy_then_everything_is_republished(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, suffix: str, broker: Broker,
    watch: WatcherFactory,
) -> None:
    name = f"web-{suffix}"
    remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "v1")}, "Serve v1")
    client, app, bridge = await _app(stacks_app, broker, name)
    bridge.backoff_max = 4.0  # reconnect soon after the broker is back (the default waits up to a minute)
    await sign_in(client)  # the UI page below is read with a session, as a browser would
    stopped = time.monotonic()
    broker.stop()  # persistence is off: every retained message goes with it
    while bridge.connected.is_set():
        assert time.monotonic() - stopped < 5, "the bridge did not notice the outage"
        await asyncio.sleep(0.05)

    # A deploy during the outage, while the API and the UI keep answering.
    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={}, headers=bearer("deploy"))
    assert resp.status in (200, 202), await resp.text()
    slowest = 0.0
    while time.monotonic() - stopped < 30:
        began = time.monotonic()
        for path, headers in (("/api/health", {}), (f"/api/v1/stacks/{name}", bearer("read")), (f"/stacks/{name}", {})):
            page = await asyncio.wait_for(client.get(path, headers=headers), 2)
            assert page.status == 200, (path, page.status)
        slowest = max(slowest, time.monotonic() - began)
        await asyncio.sleep(0.5)
    assert slowest < 2
    runs = await app.runs.list(target=name, limit=5)
    assert runs[0]["kind"] == "deploy" and runs[0]["status"] == "succeeded", runs[0]
    assert not bridge.connected.is_set() and bridge.connections == 1
    deployed = (await app.data[STACKS_CATALOG].async_overview(name)).deployed_revision
    assert deployed

    broker.start()
    await connected(bridge, timeout=20)
    assert bridge.connections == 2
    # A new subscriber sees only what was republished (the restarted broker kept nothing): it must be
    # every discovery config and every device state, equal to the state now.
    ha = await watch()
    expected = {bridge.topics.config(e.platform, e.object_id): e.config for e in bridge.entities()}
    states: dict[str, str] = {}
    for kind, device in bridge.devices():
        states |= await bridge.async_states(kind, device)
    assert f"dockmaster/stack/{name}/update" in states and "dockmaster/appliance/state" in states
    await ha.wait_for(lambda: all(topic in ha.seen for topic in [*expected, *states]), timeout=5)
    for topic, config in expected.items():
        assert ha.json(topic) == config, topic
    for topic, payload in states.items():
        assert ha.seen[topic] == payload.encode(), topic
    assert ha.seen["dockmaster/status"] == b"online"
    update = ha.json(f"dockmaster/stack/{name}/update")
    assert update["installed_version"] == deployed[:12] == update["latest_version"]
    assert ha.json(f"dockmaster/stack/{name}/state")["last_result"] == "succeeded"
    assert {(APPLIANCE, ""), (STACK, name)} <= set(bridge.devices())
