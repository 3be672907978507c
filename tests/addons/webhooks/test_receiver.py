"""POST /hooks/{repo} on the real app with the real repos addon and real git remotes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from appliance.keys import APPLIANCE_KEY

from .conftest import (
    PROVIDERS,
    SECRET,
    SIGNING_SECRET,
    Remote,
    delivery,
    hook_config,
    load_payload,
    push_body,
    settled,
    sign,
    wait_for,
    webhook_syncs,
)


async def _ready(make_client: Any, remote: Remote, provider: str, **extra: Any) -> Any:
    client = await make_client(hook_config(remote, provider, **extra))
    app = client.server.app[APPLIANCE_KEY]
    assert "webhooks" in app.loaded_addons, app.addon_errors
    await wait_for(lambda: settled(app))  # the startup sync
    return client, app


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_push_to_tracked_branch_syncs_the_pushed_commit(make_client: Any, remote: Remote, provider: str) -> None:
    client, app = await _ready(make_client, remote, provider)
    sha = remote.commit("stacks/app/compose.yaml", "services: {a: {image: x}}\n")
    raw, headers = delivery(provider, push_body(provider, "main", sha))
    resp = await client.post("/hooks/infra", data=raw, headers=headers)
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert answer["status"] == "accepted"
    await wait_for(lambda: settled(app))
    run = await app.runs.get(answer["run_id"])
    assert run is not None
    assert (run["kind"], run["trigger"], run["status"]) == ("sync", "webhook", "succeeded")
    assert run["details"]["revision"] == sha
    assert sha[:7] in run["reason"] or "push to main" in run["reason"]
    assert app.data[REPOS_MANAGER].get("infra").head == sha
    await app.store.flush()
    [audit] = await app.store.fetchall("SELECT * FROM audit WHERE action = 'webhook'")
    details = json.loads(audit["details"])
    assert (audit["outcome"], details["provider"], details["branch"], details["commit"]) == \
        ("accepted", provider, "main", sha)
    assert details["delivery_id"] == headers[next(k for k in headers if "deliver" in k.lower() or "uuid" in k.lower()
                                                  or k == "X-Delivery-Id")]
    assert SECRET not in json.dumps(await app.store.fetchall("SELECT * FROM audit"))


@pytest.mark.parametrize("name", ["github_ping", "bitbucket_server_ping"])
async def test_ping_answers_200_and_starts_nothing(make_client: Any, remote: Remote, name: str) -> None:
    data = load_payload(name)
    client, app = await _ready(make_client, remote, data["provider"])
    raw = json.dumps(data["body"]).encode()
    headers = {"Content-Type": "application/json", **data["headers"], **sign(data["provider"], raw)}
    resp = await client.post("/hooks/infra", data=raw, headers=headers)
    assert (resp.status, await resp.json()) == (200, {"status": "ok", "event": "ping"})
    await asyncio.sleep(0.2)
    assert await webhook_syncs(app) == []


@pytest.mark.parametrize(("ref", "reason"), [("refs/heads/feature/x", "branch 'feature/x'"),
                                             ("refs/tags/v1.0.0", "tag 'v1.0.0'")])
async def test_other_branches_and_tags_are_ignored_with_a_reason(make_client: Any, remote: Remote, ref: str,
                                                                 reason: str) -> None:
    client, app = await _ready(make_client, remote, "github")
    body = push_body("github", "main", "ab" * 20)
    body["ref"] = ref
    raw, headers = delivery("github", body)
    resp = await client.post("/hooks/infra", data=raw, headers=headers)
    answer = await resp.json()
    assert resp.status == 200 and answer["status"] == "ignored" and reason in answer["reason"]
    await app.store.flush()
    [row] = await app.store.fetchall("SELECT outcome, detail FROM webhook_deliveries")
    assert row["outcome"] == "ignored" and reason in row["detail"]
    assert await webhook_syncs(app) == []


async def test_gitlab_tag_push_fixture_is_ignored(make_client: Any, remote: Remote) -> None:
    data = load_payload("gitlab_tag_push")
    client, _app = await _ready(make_client, remote, "gitlab")
    raw = json.dumps(data["body"]).encode()
    resp = await client.post("/hooks/infra", data=raw,
                             headers={"Content-Type": "application/json", **data["headers"], **sign("gitlab", raw)})
    assert resp.status == 200 and (await resp.json())["status"] == "ignored"


async def test_gitlab_with_standard_webhooks(make_client: Any, remote: Remote) -> None:
    client, _app = await _ready(make_client, remote, "gitlab", signing_secret=SIGNING_SECRET)
    sha = remote.commit("stacks/app/compose.yaml", "services: {b: {image: y}}\n")
    raw, headers = delivery("gitlab", push_body("gitlab", "main", sha), signing_secret=SIGNING_SECRET)
    resp = await client.post("/hooks/infra", data=raw, headers=headers)
    assert resp.status == 202, await resp.text()
    # Token alone is refused once signing is configured; an old timestamp is refused too.
    raw2, headers2 = delivery("gitlab", push_body("gitlab", "main", sha, nonce="2"))
    assert (await client.post("/hooks/infra", data=raw2, headers=headers2)).status == 401
    stale = {**headers2, **sign("gitlab", raw2, signing_secret=SIGNING_SECRET, timestamp=1_700_000_000)}
    assert (await client.post("/hooks/infra", data=raw2, headers=stale)).status == 401


async def test_github_form_encoded_delivery(make_client: Any, remote: Remote) -> None:
    from urllib.parse import urlencode

    client, _app = await _ready(make_client, remote, "github")
    sha = remote.commit("stacks/app/compose.yaml", "services: {c: {image: z}}\n")
    raw = urlencode({"payload": json.dumps(push_body("github", "main", sha))}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "push",
               "X-GitHub-Delivery": "form-1", **sign("github", raw)}
    resp = await client.post("/hooks/infra", data=raw, headers=headers)
    assert resp.status == 202, await resp.text()


async def test_unknown_repo_wrong_method_and_content_type(make_client: Any, remote: Remote) -> None:
    client, app = await _ready(make_client, remote, "generic")
    raw, headers = delivery("generic", {"ref": "refs/heads/main"})
    resp = await client.post("/hooks/nope", data=raw, headers=headers)
    assert resp.status == 404
    body = await resp.json()
    assert body["error"]["code"] == "not_found" and "infra" not in json.dumps(body)
    assert (await client.get("/hooks/infra")).status == 405
    assert (await client.put("/hooks/infra", data=raw, headers=headers)).status == 405
    resp = await client.post("/hooks/infra", data=raw, headers={**headers, "Content-Type": "text/plain"})
    assert resp.status == 415 and (await resp.json())["error"]["code"] == "unsupported_media_type"
    # Bitbucket and the generic sender take JSON only; form bodies are GitHub's and Gitea's.
    resp = await client.post("/hooks/infra", data=raw,
                             headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    assert await webhook_syncs(app) == []


async def test_valid_signature_with_broken_json_is_400(make_client: Any, remote: Remote) -> None:
    client, _app = await _ready(make_client, remote, "github")
    raw = b"{not json"
    resp = await client.post("/hooks/infra", data=raw, headers={"Content-Type": "application/json",
                                                                 "X-GitHub-Event": "push", **sign("github", raw)})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_request"


async def test_replays_start_exactly_one_sync(make_client: Any, remote: Remote) -> None:
    client, app = await _ready(make_client, remote, "github")
    sha = remote.commit("stacks/app/compose.yaml", "services: {d: {image: w}}\n")
    raw, headers = delivery("github", push_body("github", "main", sha), delivery_id="replayed-delivery")
    responses = await asyncio.gather(*(client.post("/hooks/infra", data=raw, headers=headers) for _ in range(100)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 99 + [202]
    bodies = [await r.json() for r in responses]
    assert sum(b.get("status") == "duplicate" for b in bodies) == 99
    # A replay with a fresh delivery id but the same signed body is still a replay.
    fresh = {**headers, "X-GitHub-Delivery": "attacker-made-this-up"}
    resp = await client.post("/hooks/infra", data=raw, headers=fresh)
    assert (await resp.json())["status"] == "duplicate"
    await wait_for(lambda: settled(app))
    assert len(await webhook_syncs(app)) == 1


async def test_replay_is_refused_after_a_restart(make_client: Any, remote: Remote) -> None:
    client, app = await _ready(make_client, remote, "gitea")
    sha = remote.commit("stacks/app/compose.yaml", "services: {e: {image: v}}\n")
    raw, headers = delivery("gitea", push_body("gitea", "main", sha), delivery_id="persisted-1")
    assert (await client.post("/hooks/infra", data=raw, headers=headers)).status == 202
    await wait_for(lambda: settled(app))
    await client.close()  # stops the app and flushes the store
    client, app = await _ready(make_client, remote, "gitea")
    resp = await client.post("/hooks/infra", data=raw, headers=headers)
    assert (resp.status, (await resp.json())["status"]) == (200, "duplicate")


async def test_burst_folds_into_at_most_two_syncs_at_the_newest_revision(make_client: Any, remote: Remote) -> None:
    client, app = await _ready(make_client, remote, "github", debounce="1s")
    shas = remote.stage(lambda i: {"stacks/app/compose.yaml": f"services: {{n{i}: {{image: x}}}}\n"}, 50)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = []
    for sha in shas:  # 50 valid pushes within 2 s: the remote moves, then its webhook arrives
        await remote.async_advance(sha)
        raw, headers = delivery("github", push_body("github", "main", sha))
        resp = await client.post("/hooks/infra", data=raw, headers=headers)
        assert resp.status == 202
        answers.append(await resp.json())
        await asyncio.sleep(max(0.0, started + 0.035 * len(answers) - loop.time()))
    assert loop.time() - started < 2.0
    assert answers[0]["status"] == "accepted"
    assert {a["status"] for a in answers[1:]} == {"debounced"}
    assert len({a["run_id"] for a in answers[1:]}) == 1  # one fold run stands for the whole burst
    await wait_for(lambda: settled(app))
    syncs = await webhook_syncs(app)
    assert len(syncs) == 2
    assert syncs[0]["details"]["revision"] in shas  # the leading sync: whatever was newest when it fetched
    assert syncs[-1]["details"]["revision"] == shas[-1]
    assert app.data[REPOS_MANAGER].get("infra").head == shas[-1]
    fold = await app.runs.get(answers[-1]["run_id"])
    assert fold is not None and fold["kind"] == "webhook" and fold["status"] == "succeeded"
    assert fold["details"]["deliveries"] == 49 and fold["details"]["sync_run_id"] == syncs[-1]["id"]


async def test_setup_refuses_a_hook_for_an_unknown_repo(make_client: Any, remote: Remote) -> None:
    conf = hook_config(remote, "github")
    conf["webhooks"][0]["repo"] = "other"
    client = await make_client(conf)
    app = client.server.app[APPLIANCE_KEY]
    assert "webhooks" not in app.loaded_addons
    assert "no repo named 'other'" in app.addon_errors["webhooks"].error
    resp = await client.post("/hooks/other", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status in (403, 404)


async def test_oversized_bodies_are_refused_before_parsing(make_client: Any, remote: Remote) -> None:
    client, app = await _ready(make_client, remote, "github")
    raw, headers = delivery("github", {"ref": "refs/heads/main", "padding": "x" * (1024 * 1024)})

    async def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
        for start in range(0, len(raw), 65536):
            yield raw[start:start + 65536]

    resp = await client.post("/hooks/infra", data=chunks(), headers=headers)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"
    await asyncio.sleep(0.1)
    assert await webhook_syncs(app) == []


async def test_the_example_configs_placeholder_secret_is_refused_at_start(make_client: Any, remote: Remote) -> None:
    client = await make_client(hook_config(remote, "github", secret="change-me-to-a-long-random-string"))
    app = client.app[APPLIANCE_KEY]
    assert "webhooks" not in app.loaded_addons
    error = app.addon_errors["webhooks"].error
    assert "placeholder" in error and "openssl rand -hex 32" in error and "secrets.yaml" in error
    resp = await client.post("/hooks/infra", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status in (403, 404)
