"""Hosts in Home Assistant over a real broker and real SSH hosts: Check now, pending packages, Install in its window."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from addons.mqtt.const import BRIDGE_KEY
from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer
from tests.support.hosts.fixtures import host_fleet, wait_run  # noqa: F401 - the shared fleet of SSH test hosts

from .conftest import PASSWORD, USER, Broker, WatcherFactory, connected
from .ha_schema import validate, validate_update_state

pytestmark = pytest.mark.docker

# The window opens at 03:00 UTC for an hour; the hosts engine reads it against a clock the test sets.
WINDOW = {"maint": {"cron": "0 3 * * *", "duration": "1h"}}
CLOSED = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
OPEN = datetime(2030, 1, 2, 3, 10, tzinfo=UTC)


def _version(host: Any) -> str:
    code, out = host.exec("dpkg-query", "-W", "-f", "${Version}", "dm-demo")
    assert code == 0, out
    return out.strip()


async def _runs(app: Any, name: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in await app.runs.list(target=name, limit=20) if r["kind"] == kind]


async def test_check_now_then_install_waits_for_the_window_and_upgrades(
    make_client: Any, host_fleet: Any, tmp_path: Path, broker: Broker, watch: WatcherFactory,  # noqa: F811
) -> None:
    (host,) = host_fleet.start(1)
    known = host_fleet.write_known_hosts(tmp_path / "known_hosts", [host])
    conf = host_fleet.host_config(host, known, window="maint")
    name = conf["name"]
    mqtt = {"broker": broker.url(), "username": USER, "password": PASSWORD, "client_id": "dm-test"}
    client = await make_client({"hosts": [conf], "windows": WINDOW, "mqtt": mqtt})
    app = client.server.app[APPLIANCE_KEY]
    assert {"hosts", "mqtt"} <= set(app.loaded_addons), app.addon_errors
    engine = app.data[HOSTS_ENGINE]
    clock = {"now": CLOSED}
    engine.now = lambda: clock["now"]
    engine.window_poll = 0.05
    await connected(app.data[BRIDGE_KEY])
    ha = await watch()
    update_topic, state_topic = f"dockmaster/host/{name}/update", f"dockmaster/host/{name}/state"

    configs = await ha.wait_for(lambda: [t for t in ha.seen if f"/dm-test/host_{name}_" in t
                                         and t.endswith("/config")] if len(ha.seen) > 6 else None)
    assert sorted(t.split("/")[1] for t in configs) == ["binary_sensor", "button", "sensor", "update"]
    for topic in configs:
        validate(topic.split("/")[1], ha.json(topic))
    check = ha.json(f"homeassistant/button/dm-test/host_{name}_check/config")
    install = ha.json(f"homeassistant/update/dm-test/host_{name}_update/config")
    await ha.wait_for(lambda: ha.json(update_topic))
    assert ha.json(update_topic)["latest_version"] == "current"  # not checked yet: nothing known

    # Check now: a real check over SSH; the update entity then offers the pending package.
    await ha.client.publish(check["command_topic"], check["payload_press"], qos=1)
    update = await ha.wait_for(lambda: ha.json(update_topic)["latest_version"] != "current" and ha.json(update_topic),
                               timeout=60)
    validate_update_state(update)
    assert update["latest_version"] == "+1 packages" and update["installed_version"] == "current"
    assert update["release_summary"] == "- dm-demo 1 → 2"
    assert ha.json(state_topic)["pending"] == 1 and ha.json(state_topic)["packages"] == ["dm-demo 1 → 2"]
    (checked,) = await _runs(app, name, "host_check")
    assert checked["actor"] == "mqtt:dm-test" and checked["trigger"] == "mqtt" and checked["status"] == "succeeded"

    # Install outside the window: queued, never started, and Home Assistant is told why.
    await ha.client.publish(install["command_topic"], install["payload_install"], qos=1)
    queued = await ha.wait_for(lambda: ha.json(state_topic)["state"] == "queued" and ha.json(state_topic), timeout=10)
    assert queued["reason"] == "waiting for window maint at 2030-01-02 03:00 UTC"
    assert ha.json(update_topic)["in_progress"] is False
    (waiting,) = await _runs(app, name, "host_update")
    assert waiting["status"] == "queued"
    assert waiting["actor"] == "mqtt:dm-test" and waiting["started"] is None
    await asyncio.sleep(0.5)  # several window polls: still closed, still not started
    assert _version(host) == "1"

    # The window opens: the queued update runs for real, and Home Assistant sees it done.
    clock["now"] = OPEN
    run = await wait_run(client, waiting["id"], timeout=120)
    assert run["status"] == "succeeded", run.get("log")
    assert run["actor"] == "mqtt:dm-test"
    assert _version(host) == "2"
    done = await ha.wait_for(lambda: ha.json(update_topic)["latest_version"] == "current" and ha.json(update_topic),
                             timeout=5)
    validate_update_state(done)
    assert "release_summary" not in done and done["in_progress"] is False
    await ha.wait_for(lambda: ha.json(state_topic)["reboot_required"] is True, timeout=5)
    deadline = time.monotonic() + 5  # the audit is written in batches
    while time.monotonic() < deadline:
        audit = await (await client.get("/api/v1/audit", headers=bearer("admin"))).text()
        if "host.update" in audit:
            break
        await asyncio.sleep(0.1)
    assert "mqtt:dm-test" in audit and "host.update" in audit and "host.check" in audit, audit[:500]
