"""A real restart of the app on the same data dir: quiet-hours holds and folds in progress carry over."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from addons.hosts.events import UpdatesAvailable
from addons.notify.const import ENGINE_KEY
from addons.stacks.events import DeployFailed, DriftDetected
from appliance.core import Appliance
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY
from tests.addons.notify.conftest import NotifyApp, Receiver


def _target(name: str, secret: str, **options: str) -> str:
    lines = [f"  - name: {name}", f"    url: !secret {secret}"]
    lines += [f"    {key}: {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


async def _restart(aiohttp_client: Any, client: TestClient, app: Appliance) -> tuple[TestClient, Appliance]:
    """Stop the app (its shutdown hooks run, the store closes) and start it again on the same config and data."""
    path = app.config_path
    await client.close()
    again = await aiohttp_client(await create_app(path))
    return again, again.server.app[APPLIANCE_KEY]


async def _pending_rows(app: Appliance) -> list[dict[str, Any]]:
    await app.store.flush()
    return await app.store.fetchall("SELECT target, state FROM notify_pending")


async def test_restart_during_quiet_hours_still_sends_one_digest_at_their_end(
    notify_app: NotifyApp, receiver: Receiver, aiohttp_client: Any,
) -> None:
    # Quiet hours that opened at the top of this hour and close 8 s from now (UTC, the test time zone).
    now = datetime.now(UTC)
    duration = now.minute * 60 + now.second + now.microsecond / 1e6 + 8
    closes = time.time() + 8
    client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[all]", min_severity="info",
                              quiet_hours=f"{{cron: '0 * * * *', duration: {duration:.3f}s}}"),
        secrets={"phone_url": receiver.json_url()},
    )
    app.bus.async_fire(DriftDetected(stack="web", details="a container stopped."))
    app.bus.async_fire(UpdatesAvailable(host="vm1", count=2, packages=["a", "b"]))
    app.bus.async_fire(UpdatesAvailable(host="vm1", count=2, packages=["a", "b"]))
    rows = await _pending_rows(app)
    assert [row["target"] for row in rows] == ["phone"]

    client, app = await _restart(aiohttp_client, client, app)
    assert time.time() < closes - 1, "the restart took too long for this test's quiet hours"
    target = app.data[ENGINE_KEY].targets["phone"]
    assert {key: held.count for key, held in target.held.items()} == {
        "drift_detected:web": 1, "updates_available:vm1": 2}
    app.bus.async_fire(UpdatesAvailable(host="vm2", count=1, packages=["c"]))  # held beside the others
    await asyncio.sleep(0.3)
    assert receiver.requests == []  # still quiet

    requests = await receiver.wait_for(1, timeout=closes - time.time() + 5)
    assert time.time() >= closes - 0.5  # not before the quiet hours end
    await asyncio.sleep(0.5)
    assert len(requests) == 1
    digest = requests[0].json
    assert digest["title"] == "4 notifications held during quiet hours"
    assert "- **Drift on web**" in digest["message"]
    assert "- **2 updates available on vm1** (2 times)" in digest["message"]
    assert "- **1 update available on vm2**" in digest["message"]
    assert await _pending_rows(app) == []  # delivered: nothing left to carry over

    # Started again once more: the digest is not sent twice.
    client, app = await _restart(aiohttp_client, client, app)
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1


async def test_quiet_hours_that_ended_while_down_send_the_digest_at_start(
    notify_app: NotifyApp, receiver: Receiver, aiohttp_client: Any, write_config: Any,
) -> None:
    now = datetime.now(UTC)
    duration = now.minute * 60 + now.second + 600
    quiet = f"{{cron: '0 * * * *', duration: {duration}s}}"
    client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[all]", min_severity="info", quiet_hours=quiet),
        secrets={"phone_url": receiver.json_url()},
    )
    app.bus.async_fire(DriftDetected(stack="web", details="a container stopped."))
    await asyncio.sleep(0.3)
    assert receiver.requests == []
    await client.close()

    # While it was down, the quiet hours were taken out of the config.
    write_config("notify:\n" + _target("phone", "phone_url", events="[all]", min_severity="info"),
                 secrets={"phone_url": receiver.json_url()})
    again = await aiohttp_client(await create_app(app.config_path))
    requests = await receiver.wait_for(1, timeout=5)
    assert requests[0].json["title"] == "1 notification held during quiet hours"
    assert "- **Drift on web**" in requests[0].json["message"]
    assert await _pending_rows(again.server.app[APPLIANCE_KEY]) == []


async def test_a_fold_in_progress_continues_after_a_restart(
    notify_app: NotifyApp, receiver: Receiver, aiohttp_client: Any,
) -> None:
    client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[deploy_failed]", fold="8s"),
        secrets={"phone_url": receiver.json_url()},
    )
    period_ends = time.time() + 8
    for number in range(5):
        app.bus.async_fire(DeployFailed(stack="traefik", revision="abc", error=f"attempt {number}"))
    await receiver.wait_for(1)
    assert [r.json["title"] for r in receiver.requests] == ["Deploy of traefik failed"]

    client, app = await _restart(aiohttp_client, client, app)
    assert time.time() < period_ends - 1, "the restart took too long for this test's fold period"
    for number in range(5, 8):
        app.bus.async_fire(DeployFailed(stack="traefik", revision="abc", error=f"attempt {number}"))
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1  # the repeats after the restart are folded too

    requests = await receiver.wait_for(2, timeout=period_ends - time.time() + 5)
    assert time.time() >= period_ends - 0.5  # the period kept its end across the restart
    assert requests[1].json["title"] == "Deploy of traefik failed 7 more times"
    assert "attempt 7" in requests[1].json["message"]
