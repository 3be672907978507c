"""Declared routes: every handler carries its auth level and schemas, which feed auth and OpenAPI."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import voluptuous as vol
from aiohttp import web

from ..errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from ..keys import BODY_KEY, QUERY_KEY

Auth = Literal["public", "session", "read", "deploy", "admin"]
Kind = Literal["api", "ui", "hook", "static"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_BODY_LIMIT = 1024 * 1024
EMPTY_BODY = vol.Schema({})
SPEC_ATTR = "__dockmaster_route__"


@dataclass
class RouteSpec:
    """One declared route: method, path, who may call it and the shape of its input."""

    method: str
    path: str
    handler: Handler
    auth: Auth
    summary: str
    kind: Kind = "api"
    body: vol.Schema | None = None
    query: vol.Schema | None = None
    tags: tuple[str, ...] = ()
    name: str | None = None
    responses: dict[int, str] = field(default_factory=dict)
    body_limit: int = JSON_BODY_LIMIT
    websocket: bool = False


def route_spec(request: web.Request) -> RouteSpec | None:
    """The spec of the handler that matched this request, if it was declared."""
    handler = request.match_info.handler
    return getattr(handler, SPEC_ATTR, None)


class RouteTable:
    """Collects declared routes from the core and the addons, then installs them on the app."""

    def __init__(self) -> None:
        """Start empty."""
        self.routes: list[RouteSpec] = []

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        auth: Auth,
        summary: str,
        kind: Kind = "api",
        body: vol.Schema | dict[Any, Any] | None = None,
        query: vol.Schema | dict[Any, Any] | None = None,
        tags: tuple[str, ...] | list[str] = (),
        name: str | None = None,
        responses: dict[int, str] | None = None,
        body_limit: int = JSON_BODY_LIMIT,
        websocket: bool = False,
    ) -> RouteSpec:
        """Declare a route; `auth` is required so nothing is public by accident."""
        if body is None and method.upper() in ("POST", "PUT", "PATCH") and kind != "hook":
            # A state change that takes no input still refuses input: unknown fields are a 400.
            # Webhook receivers read their raw body themselves (signatures are over the exact bytes).
            body = EMPTY_BODY
        if isinstance(body, dict):
            body = vol.Schema(body)
        if isinstance(query, dict):
            query = vol.Schema(query, extra=vol.REMOVE_EXTRA)
        spec = RouteSpec(
            method.upper(), path, handler, auth, summary, kind, body, query, tuple(tags), name,
            responses or {}, body_limit, websocket,
        )
        self.routes.append(spec)
        return spec

    def get(self, path: str, handler: Handler, **kwargs: Any) -> RouteSpec:
        """Declare a GET route."""
        return self.add("GET", path, handler, **kwargs)

    def post(self, path: str, handler: Handler, **kwargs: Any) -> RouteSpec:
        """Declare a POST route."""
        return self.add("POST", path, handler, **kwargs)

    def patch(self, path: str, handler: Handler, **kwargs: Any) -> RouteSpec:
        """Declare a PATCH route."""
        return self.add("PATCH", path, handler, **kwargs)

    def install(self, app: web.Application) -> None:
        """Add every declared route to the aiohttp router, wrapped with input validation."""
        for spec in self.routes:
            app.router.add_route(spec.method, spec.path, _wrap(spec), name=spec.name)


def _wrap(spec: RouteSpec) -> Handler:
    @functools.wraps(spec.handler)
    async def _handler(request: web.Request) -> web.StreamResponse:
        if spec.query is not None:
            request[QUERY_KEY] = validate(spec.query, dict(request.query), where="query")
        if spec.body is not None:
            request[BODY_KEY] = validate(spec.body, await read_body(request, spec.body_limit), where="body")
        return await spec.handler(request)

    setattr(_handler, SPEC_ATTR, spec)
    return _handler


async def read_body(request: web.Request, limit: int = JSON_BODY_LIMIT) -> Any:
    """Read a JSON (or, from the UI, form-encoded) body within a size limit."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    ctype = request.content_type
    if ctype == "application/x-www-form-urlencoded":
        form = await request.post()  # cached: the CSRF check may have read it already
        return {k: str(v) for k, v in form.items() if k != "csrf_token"}
    try:
        raw = await request.read()  # aiohttp enforces client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body is over {limit} bytes") from None
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    if not raw:
        return {}
    if ctype == "application/json":
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise ValidationFailed(f"body is not valid JSON: {err}") from None
    raise UnsupportedMediaType("body must be application/json")


def validate(schema: vol.Schema, data: Any, *, where: str) -> Any:
    """Validate input with a schema, turning every problem into one 400 with details."""
    try:
        return schema(data)
    except vol.MultipleInvalid as err:
        problems = [
            {"path": ".".join(str(p) for p in e.path), "message": _friendly(e)} for e in err.errors
        ]
        raise ValidationFailed(f"invalid {where}: " + "; ".join(
            f"{p['path'] or where}: {p['message']}" for p in problems
        ), details={"problems": problems}) from None
    except vol.Invalid as err:
        raise ValidationFailed(f"invalid {where}: {_friendly(err)}") from None


def _friendly(err: vol.Invalid) -> str:
    if err.msg == "extra keys not allowed":
        return "unknown field"
    return err.msg
