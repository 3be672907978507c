"""The `POST /hooks/{repo}` receiver: bounded read, verify, then parse, dedupe, answer at once."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance.core import Appliance
from appliance.datakeys import DataKey
from appliance.errors import (
    DockmasterError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from appliance.http.identity import client_ip

from .debounce import SyncDebouncer
from .events import WebhookReceived
from .history import DeliveryLog, DeliveryRecord
from .payloads import Delivery, PayloadError, clean, decode_body, delivery_id, event_header, parse
from .signatures import SignatureError, verify

_LOGGER = logging.getLogger(__name__)

BODY_LIMIT = 1024 * 1024
PROVIDER_NAMES = {
    "github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea", "forgejo": "Forgejo",
    "bitbucket": "Bitbucket", "generic": "generic sender",
}
_FORM_PROVIDERS = ("github", "gitea", "forgejo")  # they can send `payload=<json>` form bodies
# Rejected requests come from anyone: record at most this many per repo a minute (the rest are counted).
REJECT_RECORD_LIMIT = 60



@dataclass(frozen=True, slots=True)
class Hook:
    """One configured webhook (the secrets stay here: never logged, shown or stored)."""

    repo: str
    provider: str
    secret: str
    signing_secret: str | None
    debounce: float

    @property
    def token_only(self) -> bool:
        """GitLab without Standard Webhooks signing: a captured request can be replayed by anyone."""
        return self.provider == "gitlab" and not self.signing_secret

    @property
    def scheme(self) -> str:
        """How deliveries are verified, in words for the UI and API."""
        if self.provider == "gitlab":
            return "token only, replayable" if self.token_only else "token + Standard Webhooks signature"
        if self.provider in ("gitea", "forgejo"):
            return "HMAC-SHA256 (hex)"
        return "HMAC-SHA256 (sha256=)"


class _RejectBudget:
    """Caps how many rejected requests per repo are written to history each minute."""

    def __init__(self, limit: int = REJECT_RECORD_LIMIT) -> None:
        self.limit = limit
        self._windows: dict[str, tuple[int, int, int]] = {}  # repo -> (minute, recorded, dropped)

    def allow(self, repo: str) -> tuple[bool, int]:
        """Whether to record this rejection, and how many were dropped in the previous minute."""
        minute = int(time.time() // 60)
        current, recorded, dropped = self._windows.get(repo, (minute, 0, 0))
        carried = 0
        if current != minute:
            carried, recorded, dropped = dropped, 0, 0
        if recorded < self.limit:
            self._windows[repo] = (minute, recorded + 1, dropped)
            return True, carried
        self._windows[repo] = (minute, recorded, dropped + 1)
        return False, carried


RECEIVER_KEY: DataKey[WebhookReceiver] = DataKey("webhooks")


class WebhookReceiver:
    """Holds the configured hooks and answers deliveries for them."""

    def __init__(self, app: Appliance, hooks: dict[str, Hook], log: DeliveryLog, repos: Any) -> None:
        """Bind the hooks, the delivery log and the repos addon's manager."""
        self.app = app
        self.hooks = hooks
        self.log = log
        self.repos = repos
        self.debouncers = {name: SyncDebouncer(app, name, hook.debounce, repos) for name, hook in hooks.items()}
        self._rejects = _RejectBudget()

    async def async_handle(self, request: web.Request) -> web.Response:
        """Verify a delivery before reading it, then act on it; the sync runs in the background."""
        hook = self.hooks.get(request.match_info.get("repo", ""))
        if hook is None:
            raise NotFound("no webhook is configured at this address")
        source = client_ip(request)
        try:
            body = await _read_body(request, hook.provider)
            scheme = verify(hook.provider, request.headers, body, secret=hook.secret,
                            signing_secret=hook.signing_secret)
            delivery = parse(hook.provider, request.headers, decode_body(request.content_type, body))
        except (DockmasterError, SignatureError, PayloadError) as err:
            self._reject(request, hook, err, source)
            if isinstance(err, SignatureError):
                raise Unauthorized("the delivery's signature or token is missing or wrong") from None
            if isinstance(err, PayloadError):
                raise ValidationFailed(str(err)) from None
            raise
        keys = [f"body:{hook.repo}:{hashlib.sha256(body).hexdigest()}"]
        if delivery.delivery_id:
            keys.append(f"id:{hook.repo}:{hook.provider}:{delivery.delivery_id}")
        if not self.log.check_and_mark(keys):
            self._record(hook, delivery, "duplicate", 200, source, detail="already received; nothing started")
            return web.json_response({"status": "duplicate", "delivery_id": delivery.delivery_id})
        if delivery.event == "ping":
            self.log.persist(hook.repo, keys)
            self._record(hook, delivery, "ping", 200, source, detail=f"verified ({scheme})")
            return web.json_response({"status": "ok", "event": "ping"})
        if delivery.event != "push":
            self.log.persist(hook.repo, keys)
            detail = f"event '{delivery.raw_event or delivery.event}' is not a push"
            self._record(hook, delivery, "ignored", 200, source, detail=detail)
            return web.json_response({"status": "ignored", "reason": detail})
        return await self._async_push(hook, delivery, keys, source)

    async def _async_push(self, hook: Hook, delivery: Delivery, keys: list[str], source: str | None) -> web.Response:
        tracked = self.repos.get(hook.repo).branch
        update = next((u for u in delivery.updates if u.kind == "branch" and u.name == tracked), None)
        if not delivery.updates and hook.provider == "generic":
            update = None  # an empty generic body means "sync now"
        elif update is None or update.deleted:
            detail = _ignored_reason(delivery, tracked, deleted=update is not None)
            self.log.persist(hook.repo, keys)
            self._record(hook, delivery, "ignored", 200, source, detail=detail)
            return web.json_response({"status": "ignored", "reason": detail})
        commit = update.commit if update else None
        name = PROVIDER_NAMES[hook.provider]
        reason = f"{name} push to {tracked}" + (f" at {commit[:7]}" if commit else "")
        if delivery.pusher:
            reason += f" by {delivery.pusher}"
        try:
            run_id, status = await self.debouncers[hook.repo].async_push(reason, f"webhook:{hook.provider}")
        except Exception as err:
            # Not remembered: the sender's retry or redelivery must be able to try again.
            self.log.forget(keys)
            _LOGGER.error("Webhook for %s could not request a sync: %s", hook.repo, err)
            self._record(hook, delivery, "error", 503, source, branch=tracked, commit=commit,
                         detail=clean(f"sync request failed: {err}", 200))
            raise Unavailable("the sync could not be requested; try again later") from None
        # The disk writes come after the sync request so that they never delay it in the write batch.
        self.log.persist(hook.repo, keys)
        detail = "sync requested" if status == "accepted" else "folded into the sync after this burst"
        self._record(hook, delivery, status, 202, source, branch=tracked, commit=commit, run_id=run_id, detail=detail)
        return web.json_response({"status": status, "run_id": run_id}, status=202)

    # --- history ------------------------------------------------------------------------

    def _reject(self, request: web.Request, hook: Hook, err: Exception, source: str | None) -> None:
        allowed, dropped = self._rejects.allow(hook.repo)
        if dropped:
            _LOGGER.warning("Webhook %s: %d rejected requests were not recorded (rate limit)", hook.repo, dropped)
        if not allowed:
            return
        status = err.status if isinstance(err, DockmasterError) else 401 if isinstance(err, SignatureError) else 400
        outcome = {401: "bad_signature", 413: "too_large", 415: "unsupported_media_type"}.get(status, "bad_request")
        message = err.message if isinstance(err, DockmasterError) else str(err)
        try:
            received_id = delivery_id(hook.provider, request.headers)
        except PayloadError:
            received_id = None
        record = DeliveryRecord(hook.repo, hook.provider, outcome, status, delivery_id=received_id,
                                event=event_header(hook.provider, request.headers), detail=clean(message, 200),
                                source=source)
        self._write(record)

    def _record(
        self, hook: Hook, delivery: Delivery, outcome: str, status: int, source: str | None, *,
        branch: str | None = None, commit: str | None = None, run_id: int | None = None, detail: str = "",
    ) -> None:
        if branch is None and delivery.updates:
            branch = delivery.updates[0].name
        record = DeliveryRecord(
            hook.repo, hook.provider, outcome, status, delivery_id=delivery.delivery_id,
            event=delivery.raw_event or delivery.event, branch=clean(branch, 100) if branch else None,
            commit=commit, run_id=run_id, detail=detail, source=source,
        )
        self._write(record)

    def _write(self, record: DeliveryRecord) -> None:
        self.log.record(record)
        details = record.as_dict()
        del details["time"], details["repo"], details["outcome"]
        self.app.store.audit(f"webhook:{record.provider}", "webhook", record.repo, source=record.source,
                             outcome=record.outcome, details=details)
        self.app.bus.async_fire(WebhookReceived(
            repo=record.repo, provider=record.provider, event=record.event, outcome=record.outcome,
            delivery_id=record.delivery_id, branch=record.branch,
        ))

    async def async_stop(self) -> None:
        """Cancel folds still waiting for their burst to settle."""
        for debouncer in self.debouncers.values():
            await debouncer.async_stop()


def _ignored_reason(delivery: Delivery, tracked: str, *, deleted: bool) -> str:
    if deleted:
        return f"branch '{tracked}' was deleted; nothing to deploy"
    names = ", ".join(f"{u.kind} '{clean(u.name, 60)}'" for u in delivery.updates[:3]) or "no branch"
    return f"push to {names}, not the tracked branch '{tracked}'"


async def _read_body(request: web.Request, provider: str, limit: int = BODY_LIMIT) -> bytes:
    """Check the content type and read at most `limit` bytes (413 past it, before anything is parsed)."""
    allowed = ("application/json", "application/x-www-form-urlencoded") if provider in _FORM_PROVIDERS \
        else ("application/json",)
    if request.content_type not in allowed:
        raise UnsupportedMediaType(f"the body must be {' or '.join(allowed)}")
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
