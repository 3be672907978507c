"""Reading verified deliveries: body decoding, event names, delivery ids and the refs a push moved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

ZERO_SHA = "0" * 40
MAX_ID_LENGTH = 200

# Delivery id headers per provider, most specific first. `webhook-id` is covered by the Standard
# Webhooks signature; the others are not signed, so the body digest is checked for replays too.
_DELIVERY_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("X-GitHub-Delivery",),
    "gitea": ("X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"),
    "forgejo": ("X-Forgejo-Delivery", "X-Gitea-Delivery"),
    "gitlab": ("webhook-id", "Idempotency-Key", "X-Gitlab-Event-UUID"),
    "bitbucket": ("X-Request-UUID", "X-Request-Id"),
    "generic": ("webhook-id", "X-Delivery-Id"),
}
_EVENT_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("X-GitHub-Event",),
    "gitea": ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event"),
    "forgejo": ("X-Forgejo-Event", "X-Gitea-Event"),
    "gitlab": ("X-Gitlab-Event",),
    "bitbucket": ("X-Event-Key",),
    "generic": ("X-Event",),
}
# Provider event names that mean "a ref moved" or "are you there?".
_PUSH_EVENTS = {"push", "push hook", "tag push hook", "repo:push", "repo:refs_changed"}
_PING_EVENTS = {"ping", "test", "diagnostics:ping"}


class PayloadError(Exception):
    """A verified body that cannot be read (answered 400)."""


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """One ref a push moved: a branch or tag, the commit it points at now, or deleted."""

    kind: str  # branch | tag | other
    name: str
    commit: str | None
    deleted: bool = False


@dataclass(slots=True)
class Delivery:
    """What a verified delivery says, reduced to what Dockmaster acts on."""

    provider: str
    event: str  # ping | push | the provider's own name for anything else
    raw_event: str
    delivery_id: str | None
    updates: list[RefUpdate] = field(default_factory=list)
    pusher: str | None = None


def clean(text: Any, limit: int = 100) -> str:
    """Printable text for logs and pages: control characters dropped, length capped."""
    value = "".join(ch for ch in str(text) if ch.isprintable())
    return value[:limit]


def decode_body(content_type: str, raw: bytes) -> Any:
    """Parse a JSON body, or GitHub's form-encoded `payload=<json>`; raises PayloadError."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            fields = parse_qs(raw.decode("utf-8"), strict_parsing=True, max_num_fields=8)
            if len(fields.get("payload", [])) != 1:
                raise PayloadError("a form-encoded delivery needs exactly one 'payload' field")
            return json.loads(fields["payload"][0])
        return json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError(f"body is not valid JSON: {clean(err, 120)}") from None


def header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first of `names` present and non-empty (header names are case-insensitive)."""
    for name in names:
        value = headers.get(name, "").strip()
        if value:
            return value
    return None


def delivery_id(provider: str, headers: Mapping[str, str]) -> str | None:
    """The sender's id for this delivery (the same on its retries and redeliveries)."""
    value = header(headers, _DELIVERY_HEADERS[provider])
    if value is not None and (len(value) > MAX_ID_LENGTH or not value.isprintable()):
        raise PayloadError("delivery id header is too long or not printable")
    return value


def event_header(provider: str, headers: Mapping[str, str]) -> str:
    """The raw event name from the provider's event header (empty when absent)."""
    return clean(header(headers, _EVENT_HEADERS[provider]) or "", 64)


def event_name(provider: str, headers: Mapping[str, str], payload: Any) -> tuple[str, str]:
    """The normalized event (`ping`, `push`, or the raw name) and the raw name the sender used."""
    raw = header(headers, _EVENT_HEADERS[provider])
    if raw is None and provider == "generic" and isinstance(payload, dict):
        raw = str(payload.get("event") or "push")
    if raw is None and provider == "gitlab" and isinstance(payload, dict):
        raw = str(payload.get("object_kind") or "")
    raw = clean(raw or "", 64)
    lowered = raw.lower()
    if lowered in _PING_EVENTS:
        return "ping", raw
    if lowered in _PUSH_EVENTS or (lowered == "system hook" and _object_kind(payload) in ("push", "tag_push")):
        return "push", raw
    return lowered or "unknown", raw


def _object_kind(payload: Any) -> str:
    return str(payload.get("object_kind", "")) if isinstance(payload, dict) else ""


def split_ref(ref: str) -> tuple[str, str]:
    """`refs/heads/main` → (branch, main); `refs/tags/v1` → (tag, v1); anything else → (other, ref)."""
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return kind, ref[len(prefix):]
    return "other", ref


def _sha(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    if not text or text == ZERO_SHA or not all(ch in "0123456789abcdef" for ch in text) or len(text) > 64:
        return None
    return text


def _git_style(payload: dict[str, Any]) -> list[RefUpdate]:
    """GitHub, Gitea, Forgejo and GitLab: `ref` plus `after` (all zeros when the ref was deleted)."""
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        return []
    kind, name = split_ref(ref)
    commit = _sha(payload.get("after")) or _sha(payload.get("checkout_sha"))
    deleted = bool(payload.get("deleted")) or commit is None
    return [RefUpdate(kind, name, None if deleted else commit, deleted)]


def _bitbucket(payload: dict[str, Any]) -> list[RefUpdate]:
    """Bitbucket Cloud `push.changes[].new` and Bitbucket Data Center `changes[].ref`."""
    updates: list[RefUpdate] = []
    push = payload.get("push")
    if isinstance(push, dict):
        for change in push.get("changes") or []:
            if not isinstance(change, dict):
                continue
            new, old = change.get("new"), change.get("old")
            if isinstance(new, dict):
                kind = {"branch": "branch", "tag": "tag", "annotated_tag": "tag"}.get(str(new.get("type")), "other")
                target = _obj(new, "target")
                updates.append(RefUpdate(kind, str(new.get("name", "")), _sha(target.get("hash"))))
            elif isinstance(old, dict):
                kind = "tag" if "tag" in str(old.get("type")) else "branch"
                updates.append(RefUpdate(kind, str(old.get("name", "")), None, deleted=True))
        return updates
    for change in payload.get("changes") or []:
        if not isinstance(change, dict) or not isinstance(change.get("ref"), dict):
            continue
        ref = change["ref"]
        kind = {"BRANCH": "branch", "TAG": "tag"}.get(str(ref.get("type")), "other")
        name = str(ref.get("displayId") or split_ref(str(ref.get("id", "")))[1])
        deleted = change.get("type") == "DELETE"
        updates.append(RefUpdate(kind, name, None if deleted else _sha(change.get("toHash")), deleted))
    return updates


def _generic(payload: dict[str, Any]) -> list[RefUpdate]:
    """The generic sender: `ref` or `branch`, plus `after` or `commit`; an empty body means "sync now"."""
    if isinstance(payload.get("ref"), str):
        kind, name = split_ref(payload["ref"])
    elif isinstance(payload.get("branch"), str):
        kind, name = "branch", payload["branch"]
    else:
        return []
    commit = _sha(payload.get("after")) or _sha(payload.get("commit"))
    return [RefUpdate(kind, name, commit, bool(payload.get("deleted")))]


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _pusher(provider: str, payload: dict[str, Any]) -> str | None:
    candidates: list[Any] = []
    if provider == "gitlab":
        candidates = [payload.get("user_username"), payload.get("user_name")]
    elif provider == "bitbucket":
        actor = _obj(payload, "actor")
        candidates = [actor.get("nickname"), actor.get("display_name"), actor.get("name")]
    else:
        pusher, sender = _obj(payload, "pusher"), _obj(payload, "sender")
        candidates = [pusher.get("name"), pusher.get("login"), pusher.get("username"), sender.get("login")]
    for candidate in candidates:
        if candidate:
            return clean(candidate, 64)
    return None


def parse(provider: str, headers: Mapping[str, str], payload: Any) -> Delivery:
    """Read a verified, decoded delivery; payload paths are ignored on purpose (git decides)."""
    event, raw_event = event_name(provider, headers, payload)
    delivery = Delivery(provider, event, raw_event, delivery_id(provider, headers))
    if event != "push":
        return delivery
    if not isinstance(payload, dict):
        raise PayloadError("a push body must be a JSON object")
    if provider == "bitbucket":
        delivery.updates = _bitbucket(payload)
    elif provider == "generic":
        delivery.updates = _generic(payload)
    else:
        delivery.updates = _git_style(payload)
    delivery.pusher = _pusher(provider, payload)
    return delivery
