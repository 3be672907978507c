"""Disruptive host work never starts after its window closed, even when it waited for a fan-out slot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from appliance.keys import APPLIANCE_KEY

# Port 1 on loopback: were the update started, it would fail to connect at once.
CONFIG = {"hosts": [{"name": "w-1", "address": "127.0.0.1", "port": 1, "window": "nightly"}],
          "windows": {"nightly": {"cron": "0 2 * * *", "duration": "1h"}}}


async def test_window_closing_while_waiting_for_a_slot_keeps_the_update_queued(make_client: Any) -> None:
    client = await make_client(CONFIG)
    app = client.server.app[APPLIANCE_KEY]
    engine = app.data[HOSTS_ENGINE]
    clock = {"now": datetime(2030, 1, 1, 2, 30, tzinfo=UTC)}
    engine.now = lambda: clock["now"]
    engine.window_poll = 0.05
    engine.set_fan_out(1)

    async with engine._slot():  # the only slot is busy (a long check of another host)
        job = await engine.async_submit("w-1", "update", trigger="manual")
        await asyncio.sleep(0.2)
        clock["now"] = datetime(2030, 1, 1, 3, 30, tzinfo=UTC)  # the window closes meanwhile
    await asyncio.sleep(0.3)

    assert not job.done.done()
    status = engine.status("w-1")
    assert status.state == "queued", (status.state, status.error)
    assert status.reason == "waiting for window nightly at 2030-01-02 02:00 UTC"
    assert job.run.status == "queued" and job.run.started is None
