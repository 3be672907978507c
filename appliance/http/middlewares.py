"""The one error middleware, forwarded headers, security headers, and deny-by-default auth with CSRF."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from markupsafe import escape

from ..auth import AuthManager, Identity
from ..errors import DockmasterError, Forbidden, Unauthorized
from ..keys import APPLIANCE_KEY, AUTH_KEY, IDENTITY_KEY
from .routes import RouteSpec, route_spec

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "dm_session"
SECURE_COOKIE = "__Host-dm_session"
CSRF_HEADER = "X-CSRF-Token"
_HTTP_CODES = {
    400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "too_many_requests", 503: "unavailable",
}


def error_body(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one JSON error shape."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> web.Response:
    """A JSON error response in the one shape."""
    return web.json_response(error_body(status, code, message, details), status=status)


def _login_page(request: web.Request, status: int, message: str) -> web.Response:
    target = quote(request.path_qs, safe="/")
    html = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<meta http-equiv=refresh content=\"0;url=/login?next={target}\">"
        f"<title>Sign in</title></head><body><p>{escape(message)} "
        f"<a href=\"/login?next={target}\">Sign in</a></p></body></html>"
    )
    return web.Response(text=html, status=status, content_type="text/html")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every exception to the JSON error shape (UI pages get a sign-in page for 401)."""
    try:
        return await handler(request)
    except DockmasterError as err:
        spec = route_spec(request)
        if spec is not None and spec.kind == "ui" and err.status == 401:
            return _login_page(request, 401, err.message)
        response = error_response(err.status, err.code, err.message, err.details)
        if err.status == 429 and "retry_after" in err.details:
            response.headers["Retry-After"] = str(int(err.details["retry_after"]) + 1)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_exception_response(exc)
    except (ConnectionResetError, TimeoutError) as err:
        if isinstance(err, ConnectionResetError):
            raise
        return error_response(504, "timeout", "the operation timed out")
    except Exception:
        _LOGGER.exception("Unhandled error for %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the Dockmaster log")


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    """Render an aiohttp HTTP error (404, 405, 413 from the router or the body reader) in the one shape."""
    code = _HTTP_CODES.get(exc.status, "http_error")
    # aiohttp's default body is "<status>: <reason>"; a custom text (e.g. the body size limit) says more.
    text = (exc.text or "").strip()
    default = f"{exc.status}: {exc.reason}"
    if not text or text == default or exc.content_type != "text/plain":
        message = exc.reason.lower() if exc.reason else code.replace("_", " ")
    else:
        message = text
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        details = {"method": exc.method, "allowed": allowed}
        headers["Allow"] = ", ".join(allowed)
        message = f"method {exc.method} is not allowed here (allowed: {', '.join(allowed)})"
    response = error_response(exc.status, code, message, details)
    response.headers.update(headers)
    return response


def _security_headers(request: web.Request, headers: Any) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    )
    if request.path.startswith("/api/") and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"


@functools.lru_cache(maxsize=32)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_trusted_proxy(address: str | None, trusted: Iterable[str]) -> bool:
    """True when `address` is inside one of the `http.trusted_proxies` addresses or networks."""
    entries = tuple(trusted)
    if not address or not entries:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(entries))


def _first(value: str) -> str:
    return value.split(",")[0].strip()


@web.middleware
async def forwarded_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Honour X-Forwarded-For/-Proto/-Host only from `http.trusted_proxies`; everyone else is ignored."""
    trusted = request.app[APPLIANCE_KEY].http_conf.get("trusted_proxies") or ()
    if not trusted or not is_trusted_proxy(request.remote, trusted):
        return await handler(request)
    changes: dict[str, Any] = {}
    forwarded_for = request.headers.get("X-Forwarded-For")
    if forwarded_for:
        # Walk from the nearest hop back: the first address that is not a trusted proxy is the client.
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        client = next((hop for hop in reversed(hops) if not is_trusted_proxy(hop, trusted)), hops[0] if hops else None)
        if client:
            changes["remote"] = client
    proto = request.headers.get("X-Forwarded-Proto")
    if proto and _first(proto).lower() in ("http", "https"):
        changes["scheme"] = _first(proto).lower()
    host = request.headers.get("X-Forwarded-Host")
    if host and _first(host) and all(c.isalnum() or c in ".-:[]" for c in _first(host)):
        changes["host"] = _first(host)
    return await handler(request.clone(**changes) if changes else request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every response (`on_response_prepare`): errors, redirects, files and sockets too."""
    _security_headers(request, response.headers)


def same_origin(request: web.Request) -> bool:
    """False when a browser says the request comes from another site (login CSRF, cross-site WebSocket).

    Browsers send `Sec-Fetch-Site` and `Origin` (or at least `Referer`) on form posts and WebSocket
    handshakes; a request with none of them comes from a non-browser client and cannot be a CSRF.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin == "null":
            return False
        return urlsplit(origin).netloc.lower() == request.host.lower()
    referer = request.headers.get("Referer")
    if referer:
        return urlsplit(referer).netloc.lower() == request.host.lower()
    return True


def is_https(request: web.Request) -> bool:
    """True when the client reached us over https (directly or via a trusted proxy)."""
    return request.secure or request.scheme == "https"


def cookie_name(request: web.Request) -> str:
    """`__Host-dm_session` behind https, `dm_session` on plain http."""
    return SECURE_COOKIE if is_https(request) else COOKIE


def resolve_identity(request: web.Request) -> Identity | None:
    """The caller from a Bearer token or a session cookie; None when neither is valid."""
    auth: AuthManager = request.app[AUTH_KEY]
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        identity = auth.identity_for_token(token.strip())
        if identity is None:
            raise Unauthorized("invalid API token")
        return identity
    # Over https only the `__Host-` cookie counts: a plain `dm_session` could have been planted by a
    # sibling subdomain or over http, and would otherwise fix the session (cookie tossing).
    session = auth.session(request.cookies.get(cookie_name(request)))
    return auth.identity_for_session(session) if session else None


async def _check_csrf(request: web.Request, identity: Identity) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        sent = str(form.get("csrf_token", ""))
    if not identity.csrf or not sent or not hmac.compare_digest(sent.encode(), identity.csrf.encode()):
        raise Forbidden("missing or invalid CSRF token")


def _required(spec: RouteSpec) -> str | None:
    return None if spec.auth in ("public", "session") else spec.auth


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: only declared routes are served, each to the identities it allows."""
    spec = route_spec(request)
    if spec is None:
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical.startswith("/static"):
            return await handler(request)
        raise Forbidden("this route is not declared")
    identity = resolve_identity(request) if spec.auth != "public" or spec.kind == "ui" else None
    request[IDENTITY_KEY] = identity
    if spec.auth == "public":
        return await handler(request)
    if identity is None:
        raise Unauthorized("sign in or send an API token")
    scope = _required(spec)
    if scope is not None and not identity.allows(scope):
        raise Forbidden(f"this needs the '{scope}' scope")
    if identity.session_id and request.method not in SAFE_METHODS:
        await _check_csrf(request, identity)
    # Any upgrade counts, not only routes declared `websocket=True`: a forgotten flag must not open a hole.
    upgrade = spec.websocket or request.headers.get("Upgrade", "").lower() == "websocket"
    if upgrade and identity.session_id and not same_origin(request):
        raise Forbidden("cross-origin WebSocket refused")
    return await handler(request)
