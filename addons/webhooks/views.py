"""The Webhooks page and `GET /api/v1/webhooks`: URLs to paste, verification, recent deliveries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from appliance.core import Appliance
from appliance.http.ui import render
from appliance.keys import APPLIANCE_KEY

from .receiver import RECEIVER_KEY

if TYPE_CHECKING:
    from .receiver import WebhookReceiver

TEMPLATES = Path(__file__).parent / "templates"


async def async_overview(app: Appliance) -> list[dict[str, Any]]:
    """Per hook: the URL, provider, whether a secret is set (never the secret) and the last deliveries."""
    receiver: WebhookReceiver = app.data[RECEIVER_KEY]
    result = []
    for name, hook in sorted(receiver.hooks.items()):
        try:
            branch = receiver.repos.get(name).branch
        except Exception:  # the repo went away after setup: still show the hook
            branch = None
        result.append({
            "repo": name,
            "provider": hook.provider,
            "url": app.link(f"/hooks/{name}"),
            "content_type": "application/json",
            "branch": branch,
            "secret_set": bool(hook.secret),
            "signing_secret_set": bool(hook.signing_secret),
            "verification": hook.scheme,
            "token_only": hook.token_only,
            "debounce": hook.debounce,
            "folding": receiver.debouncers[name].pending,
            "deliveries": await receiver.log.async_recent(name),
        })
    return result


async def async_api_list(request: web.Request) -> web.Response:
    """Every webhook with its URL and its last 20 deliveries."""
    return web.json_response({"webhooks": await async_overview(request.app[APPLIANCE_KEY])})


async def async_page(request: web.Request) -> web.Response:
    """The Webhooks page."""
    return render(request, "webhooks_index.html", {"hooks": await async_overview(request.app[APPLIANCE_KEY])})


def register(app: Appliance, receiver: WebhookReceiver) -> None:
    """Declare the page, the API route and the navigation entry."""
    app.ui.add_templates(TEMPLATES)
    app.ui.add_nav("Webhooks", "/webhooks", order=30)
    app.api.get("/webhooks", async_page, auth="read", summary="Webhooks", kind="ui")
    app.api.get("/api/v1/webhooks", async_api_list, auth="read", summary="Webhooks and their last deliveries",
                tags=["webhooks"])
