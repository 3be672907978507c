"""Typed `web.AppKey`s for everything stored on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .auth import AuthManager
    from .core import Appliance
    from .http.live import LiveHub
    from .http.tls import CertificateStore

APPLIANCE_KEY: web.AppKey[Appliance] = web.AppKey("appliance")
AUTH_KEY: web.AppKey[AuthManager] = web.AppKey("auth")
LIVE_KEY: web.AppKey[LiveHub] = web.AppKey("live")
TLS_KEY: web.AppKey[CertificateStore | None] = web.AppKey("tls")

if TYPE_CHECKING:
    from typing import Any

    from .auth import Identity

IDENTITY_KEY: web.RequestKey[Identity | None] = web.RequestKey("identity")
BODY_KEY: web.RequestKey[Any] = web.RequestKey("body")
QUERY_KEY: web.RequestKey[dict[str, Any]] = web.RequestKey("query")
