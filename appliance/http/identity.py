"""Who is calling: the audit name and the client address of a request (set by the middlewares)."""

from __future__ import annotations

from aiohttp import web

from ..auth import Identity
from ..keys import IDENTITY_KEY


def actor(request: web.Request) -> str:
    """The audit name of the caller."""
    identity: Identity | None = request.get(IDENTITY_KEY)
    return identity.actor if identity else "anonymous"


def client_ip(request: web.Request) -> str | None:
    """The client address; `forwarded_middleware` has already applied X-Forwarded-For from trusted proxies."""
    return request.remote
