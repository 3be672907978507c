"""Real Apprise to a real local receiver: the right message per event, never blocking, folding, quiet hours."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from addons.hosts.events import RebootRequired, UpdatesAvailable
from addons.stacks.events import DeployFailed, DeploySucceeded, DriftDetected, RollbackSucceeded
from tests.addons.notify.conftest import NotifyApp, Receiver, StallServer, async_deliveries


def _target(name: str, secret: str, **options: str) -> str:
    lines = [f"  - name: {name}", f"    url: !secret {secret}"]
    lines += [f"    {key}: {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


async def test_failed_deploy_delivers_the_expected_message(notify_app: NotifyApp, receiver: Receiver) -> None:
    _client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[deploy_failed, rollback, updates_available]")
        + _target("ntfy", "ntfy_url", events="[deploy_failed]"),
        secrets={"phone_url": receiver.json_url("/hook/s3cr3t-token"),
                 "ntfy_url": receiver.ntfy_url("dm-alerts-x1")},
    )
    async with app.runs.track("deploy", "traefik", trigger="manual", reason="test") as run:
        app.bus.async_fire(DeployFailed(stack="traefik", revision="abc1234def", error="port 80 is taken",
                                        run_id=run.id))
    requests = await receiver.wait_for(2)
    await asyncio.sleep(0.2)  # nothing else may follow
    assert len(receiver.requests) == 2
    by_path = {r.path: r for r in requests}
    body = (f"Revision `abc1234` did not deploy: port 80 is taken\n\n"
            f"[Open run #{run.id}](http://127.0.0.1:8099/runs/{run.id})")
    posted = by_path["/hook/s3cr3t-token"].json
    assert posted["title"] == "Deploy of traefik failed"
    assert posted["message"] == body
    assert posted["type"] == "failure"
    ntfy = by_path["/"]
    assert ntfy.json == {"topic": "dm-alerts-x1", "title": "Deploy of traefik failed", "message": body}
    assert ntfy.headers.get("X-Markdown") == "yes"
    rows = await async_deliveries(app, count=2)
    assert sorted((r["target"], r["event"], r["outcome"], r["attempts"]) for r in rows) == [
        ("ntfy", "deploy_failed", "sent", 1), ("phone", "deploy_failed", "sent", 1)]


async def test_rollback_and_updates_available(notify_app: NotifyApp, receiver: Receiver) -> None:
    _client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[rollback, updates_available]"),
        secrets={"phone_url": receiver.json_url()},
    )
    app.bus.async_fire(RollbackSucceeded(stack="traefik", revision="1111111aaaa", bad_revision="2222222bbbb",
                                         run_id=7))
    app.bus.async_fire(UpdatesAvailable(host="debian-vm", count=3, packages=["curl", "openssl", "tzdata"]))
    # Not in the target's events: never sent.
    app.bus.async_fire(DeploySucceeded(stack="traefik", revision="1111111aaaa"))
    await receiver.wait_for(2)
    await asyncio.sleep(0.2)
    messages = {r.json["title"]: r.json for r in receiver.requests}
    assert len(receiver.requests) == 2
    rollback = messages["traefik rolled back to 1111111"]
    assert rollback["type"] == "warning"
    assert rollback["message"] == (
        "Revision `2222222` failed, so traefik runs the last good revision `1111111` again. "
        "The bad revision will not be retried automatically.\n\n"
        "[Open run #7](http://127.0.0.1:8099/runs/7)"
    )
    updates = messages["3 updates available on debian-vm"]
    assert updates["message"] == "Pending: curl, openssl, tzdata."
    assert updates["type"] == "warning"


async def test_filters_by_severity_and_stack(notify_app: NotifyApp, receiver: Receiver) -> None:
    _client, app = await notify_app(
        "notify:\n" + _target("web", "url", stacks="[web-*]", hosts="[debian-*]", min_severity="critical"),
        secrets={"url": receiver.json_url()},
    )
    app.bus.async_fire(DeployFailed(stack="db", revision="r1", error="x"))            # stack filtered out
    app.bus.async_fire(DriftDetected(stack="web-front", details="stopped"))          # warning < critical
    app.bus.async_fire(RebootRequired(host="debian-vm"))                             # warning < critical
    app.bus.async_fire(DeployFailed(stack="web-front", revision="r2", error="boom"))  # passes
    await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert [r.json["title"] for r in receiver.requests] == ["Deploy of web-front failed"]


async def test_a_target_that_never_answers_does_not_delay_the_work(
    notify_app: NotifyApp, receiver: Receiver, stall_server: StallServer,
) -> None:
    _client, app = await notify_app(
        "notify:\n"
        + _target("stalled", "stall_url", events="[deploy_failed]", timeout="0.5s", retries="1", backoff="0.1s")
        + _target("phone", "phone_url", events="[deploy_failed]"),
        secrets={"stall_url": f"json://127.0.0.1:{stall_server.port}/never",
                 "phone_url": receiver.json_url()},
    )
    started = time.monotonic()
    async with app.runs.track("deploy", "traefik", trigger="manual", reason="test") as run:
        app.bus.async_fire(DeployFailed(stack="traefik", revision="abc", error="boom", run_id=run.id))
    assert time.monotonic() - started < 1.0
    # The healthy target is not held up by the stalled one.
    await receiver.wait_for(1, timeout=3)
    rows = await async_deliveries(app, count=2, timeout=5)
    by_target = {r["target"]: r for r in rows}
    assert by_target["phone"]["outcome"] == "sent"
    stalled = by_target["stalled"]
    assert stalled["outcome"] == "failed"
    assert stalled["attempts"] == 2
    assert "no answer within 0.5s" in stalled["error"]
    assert f"json://127.0.0.1:{stall_server.port}/***" in stalled["error"]
    assert "/never" not in stalled["error"]
    assert stall_server.accepted >= 1


async def test_fifty_identical_failures_fold_into_first_and_digest(notify_app: NotifyApp, receiver: Receiver) -> None:
    _client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[deploy_failed]", fold="1s"),
        secrets={"phone_url": receiver.json_url()},
    )
    for number in range(50):
        app.bus.async_fire(DeployFailed(stack="traefik", revision="abc", error=f"attempt {number}"))
    await receiver.wait_for(2, timeout=5)
    await asyncio.sleep(1.5)  # one more fold period: no further message may come
    titles = [r.json["title"] for r in receiver.requests]
    assert titles == ["Deploy of traefik failed", "Deploy of traefik failed 49 more times"]
    assert "attempt 0" in receiver.requests[0].json["message"]
    assert "attempt 49" in receiver.requests[1].json["message"]


async def test_quiet_hours_hold_non_critical_and_send_one_digest(notify_app: NotifyApp, receiver: Receiver) -> None:
    # A window that opened at the top of this minute and closes about 6 s from now: long enough for the
    # app to start and take the events on a busy machine, short enough to stay inside this minute.
    now = datetime.now(UTC)
    if now.second >= 50:
        await asyncio.sleep(60.2 - now.second - now.microsecond / 1e6)
        now = datetime.now(UTC)
    duration = now.second + now.microsecond / 1e6 + 6
    _client, app = await notify_app(
        "notify:\n" + _target("phone", "phone_url", events="[all]", min_severity="info",
                              quiet_hours=f"{{cron: '* * * * *', duration: {duration:.3f}s}}"),
        secrets={"phone_url": receiver.json_url()},
    )
    app.bus.async_fire(DriftDetected(stack="web", details="a container stopped."))
    app.bus.async_fire(UpdatesAvailable(host="vm1", count=2, packages=["a", "b"]))
    app.bus.async_fire(UpdatesAvailable(host="vm1", count=2, packages=["a", "b"]))
    app.bus.async_fire(DeployFailed(stack="web", revision="abc", error="boom"))  # critical: passes at once
    await receiver.wait_for(1, timeout=5)
    assert [r.json["title"] for r in receiver.requests] == ["Deploy of web failed"]
    await receiver.wait_for(2, timeout=15)
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 2
    digest = receiver.requests[1].json
    assert digest["title"] == "3 notifications held during quiet hours"
    assert "- **Drift on web**" in digest["message"]
    assert "- **2 updates available on vm1** (2 times)" in digest["message"]
    assert digest["type"] == "warning"
