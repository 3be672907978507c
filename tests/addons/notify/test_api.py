"""The notify API and page: redacted targets, recent deliveries, the test button, and no URL anywhere."""

from __future__ import annotations

import logging

import pytest

from addons.stacks.events import DeployFailed
from tests.addons.notify.conftest import NotifyApp, Receiver, async_deliveries
from tests.conftest import bearer, sign_in

TOKEN = "tk_9f8e7d6c5b4a"  # the secret part of the URLs below


def _config(receiver: Receiver) -> tuple[str, dict[str, str]]:
    yaml = (
        "notify:\n"
        "  - name: phone\n"
        "    url: !secret phone_url\n"
        "    events: [deploy_failed]\n"
        "  - name: backup\n"
        "    urls: [!secret ntfy_url]\n"
        "    min_severity: critical\n"
        "    quiet_hours: '22:00-07:00'\n"
    )
    secrets = {
        "phone_url": receiver.json_url(f"/hook/{TOKEN}"),
        "ntfy_url": f"ntfy://user:{TOKEN}@127.0.0.1:{receiver.port}/topic-{TOKEN}?mode=private",
    }
    return yaml, secrets


def _assert_no_url(text: str) -> None:
    assert TOKEN not in text
    assert "/hook/" not in text
    assert "topic-" not in text


async def test_list_targets_redacted_with_last_outcome(
    notify_app: NotifyApp, receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    yaml, secrets = _config(receiver)
    client, app = await notify_app(yaml, secrets)
    app.bus.async_fire(DeployFailed(stack="traefik", revision="abc", error="boom", run_id=3))
    await async_deliveries(app, count=2)
    assert (await client.get("/api/v1/notify")).status == 401
    resp = await client.get("/api/v1/notify", headers=bearer("read"))
    assert resp.status == 200
    text = await resp.text()
    _assert_no_url(text)
    data = await resp.json()
    targets = {t["name"]: t for t in data["targets"]}
    assert targets["phone"]["urls"] == [{"url": f"json://127.0.0.1:{receiver.port}/***", "ok": True, "error": None}]
    assert targets["backup"]["urls"][0]["url"] == f"ntfy://127.0.0.1:{receiver.port}/***"
    assert targets["backup"]["quiet_hours"]["text"] == "22:00-07:00"
    assert targets["phone"]["last"]["outcome"] == "sent"
    assert {d["target"] for d in data["deliveries"]} == {"phone", "backup"}
    _assert_no_url(caplog.text)


async def test_send_test_needs_admin_and_reports_outcome(
    notify_app: NotifyApp, receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    yaml, secrets = _config(receiver)
    client, _app = await notify_app(yaml, secrets)
    resp = await client.post("/api/v1/notify/test", json={"target": "phone"}, headers=bearer("deploy"))
    assert resp.status == 403
    resp = await client.post("/api/v1/notify/test", json={"target": "nope"}, headers=bearer("admin"))
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post("/api/v1/notify/test", json={"target": "phone"}, headers=bearer("admin"))
    assert resp.status == 200
    data = await resp.json()
    assert data["outcome"] == "ok"
    assert [(r["target"], r["outcome"], r["attempts"]) for r in data["results"]] == [("phone", "sent", 1)]
    assert receiver.requests[-1].json["title"] == "Dockmaster test notification"
    resp = await client.post("/api/v1/notify/test", json={}, headers=bearer("admin"))
    assert sorted(r["target"] for r in (await resp.json())["results"]) == ["backup", "phone"]
    assert len(receiver.requests) == 3
    _assert_no_url(caplog.text)


async def test_send_test_to_a_dead_target_reports_failure(notify_app: NotifyApp, unused_tcp_port: int) -> None:
    client, _app = await notify_app(
        "notify:\n  - name: dead\n    url: !secret dead\n    retries: 5\n",
        {"dead": f"json://127.0.0.1:{unused_tcp_port}/x{TOKEN}"},
    )
    resp = await client.post("/api/v1/notify/test", json={"target": "dead"}, headers=bearer("admin"))
    data = await resp.json()
    assert data["outcome"] == "failed"
    result = data["results"][0]
    assert (result["outcome"], result["attempts"]) == ("failed", 1)  # a test is one attempt, no retries
    assert "connection error" in result["error"].lower()
    _assert_no_url(await resp.text())


async def test_page_lists_targets_and_sends_test_with_csrf(
    notify_app: NotifyApp, receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    yaml, secrets = _config(receiver)
    client, _app = await notify_app(yaml, secrets)
    csrf = await sign_in(client)
    page = await (await client.get("/notify")).text()
    assert '<a href="/notify"' in page and "Notifications</a>" in page
    assert f"json://127.0.0.1:{receiver.port}/***" in page
    assert 'data-notify-test="phone"' in page
    assert '<script src="/notify/notify.js" defer></script>' in page
    _assert_no_url(page)
    script = await client.get("/notify/notify.js")
    assert script.status == 200
    assert "window.dockmaster.post" in await script.text()
    # The button's request: a session POST needs the CSRF token.
    resp = await client.post("/api/v1/notify/test", json={"target": "phone"})
    assert resp.status == 403
    resp = await client.post("/api/v1/notify/test", json={"target": "phone"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    assert (await resp.json())["results"][0]["outcome"] == "sent"
    page = await (await client.get("/notify")).text()
    assert "Dockmaster test notification" in page
    _assert_no_url(page)
    _assert_no_url(caplog.text)


async def test_unparseable_url_disables_target_without_showing_token(
    notify_app: NotifyApp, receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client, app = await notify_app(
        "notify:\n  - name: broken\n    url: !secret bad\n  - name: phone\n    url: !secret good\n",
        {"bad": f"tgram://{TOKEN}", "good": receiver.json_url()},
    )
    data = await (await client.get("/api/v1/notify", headers=bearer("read"))).json()
    targets = {t["name"]: t for t in data["targets"]}
    assert targets["broken"]["enabled"] is False
    assert targets["broken"]["urls"][0] == {
        "url": "tgram://***", "ok": False,
        "error": "Apprise cannot read this tgram:// URL (check its format and token)",
    }
    assert "disabled" in targets["broken"]["error"]
    assert targets["phone"]["enabled"] is True
    status = await (await client.get("/api/v1/status", headers=bearer("read"))).json()
    assert any(issue["path"] == "notify[0].urls" for issue in status["config_errors"])
    app.bus.async_fire(DeployFailed(stack="s", revision="r", error="e"))
    await receiver.wait_for(1)
    assert "Notification target broken is disabled" in caplog.text  # logged once, redacted
    assert TOKEN not in caplog.text
    _assert_no_url(await (await client.get("/api/v1/status", headers=bearer("read"))).text())
