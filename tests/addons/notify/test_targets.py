"""Target filters and gates without the network: scope filters, tags, folding off, queue overflow."""

from __future__ import annotations

import asyncio
import time

from addons.hosts.events import RebootRequired, UpdatesAvailable
from addons.notify.messages import Message, compose
from addons.notify.schema import CONFIG_SCHEMA
from addons.notify.targets import Target
from addons.ops.events import LowDisk
from addons.stacks.events import DeployFailed
from tests.addons.notify.conftest import NotifyApp, StallServer, async_deliveries


def _target(sent: list[Message], **conf: object) -> Target:
    [validated] = CONFIG_SCHEMA([{"name": "t", "url": "json://127.0.0.1:1/", **conf}])
    tags = {"vm1": ["production", "web"], "vm2": ["lab"]}
    return Target(name="t", conf=validated, services=[], send=lambda _t, m: sent.append(m),
                  host_tags=lambda host: tags.get(host, []))


async def test_tags_and_hosts_filter_host_events_only() -> None:
    target = _target([], tags=["production"], hosts=["edge-*"], min_severity="info")
    assert target.accepts(RebootRequired(host="vm1"))          # tagged production
    assert not target.accepts(RebootRequired(host="vm2"))      # lab only
    assert target.accepts(UpdatesAvailable(host="edge-3", count=1))  # by name pattern
    assert target.accepts(DeployFailed(stack="web", revision="r", error="e"))  # not a host event
    assert target.accepts(LowDisk(target="appliance:/", used_percent=95, threshold=90))


async def test_fold_zero_sends_every_repeat() -> None:
    sent: list[Message] = []
    target = _target(sent, fold="0s")

    for _ in range(3):
        target.offer(compose(DeployFailed(stack="s", revision="r", error="e"), link=str, redact=str))
    assert [m.title for m in sent] == ["Deploy of s failed"] * 3
    target.close()


async def test_a_full_queue_drops_and_records(notify_app: NotifyApp, stall_server: StallServer) -> None:
    _client, app = await notify_app(
        "notify:\n  - name: slow\n    url: !secret u\n    events: [deploy_failed]\n    fold: 0s\n"
        "    timeout: 0.5s\n    retries: 0\n    queue_size: 1\n",
        {"u": f"json://127.0.0.1:{stall_server.port}/x"},
    )
    app.bus.async_fire(DeployFailed(stack="s0", revision="r", error="e"))
    # The first one is in flight (its sender reached the stalling receiver) before the next two arrive.
    deadline = time.monotonic() + 15
    while stall_server.accepted < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for number in (1, 2):
        app.bus.async_fire(DeployFailed(stack=f"s{number}", revision="r", error="e"))
        await asyncio.sleep(0.01)
    # Each send runs Apprise in a child process: on a busy machine that alone can take seconds.
    rows = await async_deliveries(app, count=3, timeout=20)
    assert sorted(r["outcome"] for r in rows) == ["dropped", "failed", "failed"]
    dropped = next(r for r in rows if r["outcome"] == "dropped")
    assert dropped["title"] == "Deploy of s2 failed"
    assert dropped["attempts"] == 0
