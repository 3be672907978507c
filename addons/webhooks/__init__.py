"""Webhook receivers: verified, deduplicated pushes from git hosts that request a repo sync at once."""

from __future__ import annotations

import binascii
from typing import Any

import voluptuous as vol
from aiohttp import web

from addons.repos.contract import REPOS
from appliance import cv
from appliance.core import Appliance
from appliance.retention import PruneRule

from . import views
from .history import DeliveryLog
from .receiver import BODY_LIMIT, RECEIVER_KEY, Hook, WebhookReceiver
from .signatures import PROVIDERS, signing_key

DOMAIN = "webhooks"
MIN_SECRET_LENGTH = 16


def _strong_secret(value: Any) -> str:
    """A secret long enough to be an HMAC key nobody guesses."""
    text = cv.string(value)
    if len(text) < MIN_SECRET_LENGTH:
        raise vol.Invalid(
            f"secret must be at least {MIN_SECRET_LENGTH} characters (make one with `openssl rand -hex 32`)"
        )
    return text


def _whsec(value: Any) -> str:
    """A Standard Webhooks signing secret: `whsec_` followed by base64 of at least 16 bytes."""
    text = cv.string(value)
    try:
        key = signing_key(text) if text.startswith("whsec_") else b""
    except (ValueError, binascii.Error):
        key = b""
    if len(key) < 16:
        raise vol.Invalid("signing_secret must look like whsec_<base64 of at least 16 bytes> (GitLab shows it so)")
    return text


def _signing_secret_only_for_gitlab(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [
        vol.Invalid("signing_secret is only used with provider gitlab", path=[index, "signing_secret"])
        for index, item in enumerate(items)
        if item.get("signing_secret") and item.get("provider") != "gitlab"
    ]
    if errors:
        raise vol.MultipleInvalid(errors)
    return items


HOOK_SCHEMA = vol.Schema(
    {
        vol.Required("repo"): cv.slug,
        vol.Required("provider"): cv.one_of(*PROVIDERS),
        vol.Required("secret"): _strong_secret,
        vol.Optional("signing_secret"): _whsec,
        vol.Optional("debounce", default="2s"): cv.duration,
    }
)
# Anyone who has read config.example.yaml knows this one: refused at start, never used to verify.
PLACEHOLDER_SECRETS = frozenset({"change-me-to-a-long-random-string"})
CONFIG_SCHEMA = vol.All(cv.ensure_list, [HOOK_SCHEMA], cv.unique_names("repo"), _signing_secret_only_for_gitlab)


async def async_setup(app: Appliance, conf: list[dict[str, Any]]) -> bool:
    """Check each hook names a configured repo, open the delivery log and declare the routes."""
    repos = app.data[REPOS]
    known = sorted(repos.names)
    missing = [f"webhooks[{i}].repo: no repo named '{item['repo']}' (repos: {', '.join(known) or 'none'})"
               for i, item in enumerate(conf) if item["repo"] not in repos.names]
    if missing:
        raise ValueError("; ".join(missing))
    placeholder = [f"webhooks[{i}].secret is the example config's placeholder: make a real one with "
                   "`openssl rand -hex 32`, put it in secrets.yaml and write `secret: !secret NAME`"
                   for i, item in enumerate(conf) if str(item["secret"]) in PLACEHOLDER_SECRETS]
    if placeholder:
        raise ValueError("; ".join(placeholder))
    hooks: dict[str, Hook] = {}
    for item in conf:
        # Inline secrets (not from secrets.yaml) must be redacted too.
        app.redactor.add(str(item["secret"]), str(item.get("signing_secret") or ""))
        hooks[item["repo"]] = Hook(item["repo"], item["provider"], str(item["secret"]),
                                   str(item["signing_secret"]) if item.get("signing_secret") else None,
                                   item["debounce"].total_seconds())
    log = DeliveryLog(app.store)
    await log.async_load()
    app.retention.register(PruneRule("deliveries", "webhook_deliveries"))
    receiver = WebhookReceiver(app, hooks, log, repos)
    app.data[RECEIVER_KEY] = receiver

    async def async_handle(request: web.Request) -> web.StreamResponse:
        # The receiver of the current config: a reload sets the addon up again with a new one, while
        # the route, installed once at start, stays.
        return await app.data[RECEIVER_KEY].async_handle(request)

    app.api.post(
        "/hooks/{repo}", async_handle, auth="public", kind="hook", body_limit=BODY_LIMIT,
        summary="Webhook receiver: verified by the provider's signature, answered at once", tags=["webhooks"],
        responses={202: "sync requested (or folded into the sync after a burst)", 200: "ping, ignored or duplicate",
                   401: "bad or missing signature", 404: "no webhook here", 413: "body over 1 MiB",
                   415: "wrong content type"},
    )
    views.register(app, receiver)
    app.scheduler.add_cron("webhooks-prune", "17 * * * *", log.async_prune, jitter=60, timeout=120)
    app.on_stop(receiver.async_stop)
    return True
