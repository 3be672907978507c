"""Parsing recorded-format payloads of every provider to branch, commit, event and delivery id."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from multidict import CIMultiDict

from addons.webhooks.payloads import PayloadError, decode_body, parse

FIXTURES = ["github_push", "github_ping", "gitea_push", "forgejo_push", "gitlab_push", "gitlab_tag_push",
            "bitbucket_push", "bitbucket_server_refs_changed", "bitbucket_server_ping", "generic_push"]
ID_HEADER_OF = {
    "github_push": "X-GitHub-Delivery", "github_ping": "X-GitHub-Delivery", "gitea_push": "X-Gitea-Delivery",
    "forgejo_push": "X-Forgejo-Delivery", "gitlab_push": "Idempotency-Key", "gitlab_tag_push": "X-Gitlab-Event-UUID",
    "bitbucket_push": "X-Request-UUID", "bitbucket_server_refs_changed": "X-Request-Id",
    "bitbucket_server_ping": "X-Request-Id", "generic_push": "X-Delivery-Id",
}


@pytest.mark.parametrize("name", FIXTURES)
def test_recorded_payload_parses_to_branch_and_commit(name: str, payload: Any) -> None:
    data = payload(name)
    raw = json.dumps(data["body"]).encode()
    delivery = parse(data["provider"], CIMultiDict(data["headers"]), decode_body("application/json", raw))
    expect = data["expect"]
    assert delivery.event == expect["event"]
    assert delivery.delivery_id == data["headers"][ID_HEADER_OF[name]]
    if expect["event"] == "push":
        [update] = delivery.updates
        assert (update.kind, update.name, update.commit, update.deleted) == \
            (expect["kind"], expect["branch"], expect["commit"], False)
        assert delivery.pusher == expect.get("pusher", delivery.pusher)


def test_github_form_encoded_payload(payload: Any) -> None:
    data = payload("github_push")
    raw = urlencode({"payload": json.dumps(data["body"])}).encode()
    body = decode_body("application/x-www-form-urlencoded", raw)
    assert parse("github", CIMultiDict(data["headers"]), body).updates[0].name == "main"


@pytest.mark.parametrize("raw", [b"payload=1&payload=2", b"nothing=here", b"payload=%7Bnot-json"])
def test_bad_form_bodies(raw: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_body("application/x-www-form-urlencoded", raw)


def test_bad_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        decode_body("application/json", b"{nope")


def test_deleted_branch_and_tags(payload: Any) -> None:
    data = payload("github_push")
    body = dict(data["body"], after="0" * 40, deleted=True)
    [update] = parse("github", CIMultiDict(data["headers"]), body).updates
    assert update.deleted and update.commit is None
    body = dict(data["body"], ref="refs/tags/v2.0.0")
    [update] = parse("github", CIMultiDict(data["headers"]), body).updates
    assert (update.kind, update.name) == ("tag", "v2.0.0")


def test_bitbucket_cloud_deleted_branch(payload: Any) -> None:
    data = payload("bitbucket_push")
    data["body"]["push"]["changes"][0]["new"] = None
    [update] = parse("bitbucket", CIMultiDict(data["headers"]), data["body"]).updates
    assert (update.name, update.deleted) == ("main", True)


def test_bitbucket_server_tag_and_delete(payload: Any) -> None:
    data = payload("bitbucket_server_refs_changed")
    data["body"]["changes"].append({"ref": {"id": "refs/tags/v3", "displayId": "v3", "type": "TAG"},
                                    "toHash": "ab" * 20, "type": "ADD"})
    data["body"]["changes"][0]["type"] = "DELETE"
    main, tag = parse("bitbucket", CIMultiDict(data["headers"]), data["body"]).updates
    assert (main.name, main.deleted) == ("main", True)
    assert (tag.kind, tag.name, tag.commit) == ("tag", "v3", "ab" * 20)


def test_other_events_keep_their_name() -> None:
    delivery = parse("github", CIMultiDict({"X-GitHub-Event": "issues"}), {"action": "opened"})
    assert (delivery.event, delivery.updates) == ("issues", [])
    delivery = parse("gitlab", CIMultiDict({"X-Gitlab-Event": "Merge Request Hook"}), {"object_kind": "merge_request"})
    assert delivery.event == "merge request hook"


def test_generic_empty_body_means_sync_now() -> None:
    delivery = parse("generic", CIMultiDict({"X-Delivery-Id": "d1"}), {})
    assert (delivery.event, delivery.updates) == ("push", [])
    assert parse("generic", CIMultiDict(), {"event": "ping"}).event == "ping"


def test_untrusted_text_is_cleaned_and_capped() -> None:
    body = {"ref": "refs/heads/main", "after": "not-a-sha", "pusher": {"name": "evil\x1b[31m\n" + "x" * 500}}
    delivery = parse("github", CIMultiDict({"X-GitHub-Event": "push"}), body)
    assert delivery.pusher is not None and "\x1b" not in delivery.pusher and len(delivery.pusher) == 64
    assert delivery.updates[0].commit is None
    with pytest.raises(PayloadError):
        parse("github", CIMultiDict({"X-GitHub-Event": "push", "X-GitHub-Delivery": "x" * 300}), body)
    with pytest.raises(PayloadError):
        parse("github", CIMultiDict({"X-GitHub-Event": "push"}), ["not", "an", "object"])
