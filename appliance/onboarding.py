"""First run in the browser: the bootstrap login opens a setup page that creates the admin user (and a token)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path
from typing import Any

import voluptuous as vol
from aiohttp import web

from . import cv
from .auth import generate_token, hash_password, hash_token
from .config import check_config
from .config_writer import ConfigWriter
from .const import SCOPES
from .errors import Conflict, Forbidden, ValidationFailed
from .http.identity import client_ip
from .http.middlewares import cookie_name, is_https
from .http.routes import RouteTable
from .http.ui import render
from .keys import APPLIANCE_KEY, AUTH_KEY, BODY_KEY, IDENTITY_KEY
from .sessions import credential_mark

_LOGGER = logging.getLogger(__name__)

MIN_PASSWORD = 8
SETUP_BODY = vol.Schema(
    {
        vol.Required("username"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Required("password"): vol.All(str, vol.Length(max=1024)),
        vol.Required("confirm"): vol.All(str, vol.Length(max=1024)),
        vol.Optional("token_name", default=""): vol.All(str, vol.Length(max=64)),
        vol.Optional("token_scope", default="read"): vol.In(SCOPES),
    }
)
# One lock per served app (not per module): a lock is bound to the event loop it first waited in.
_LOCKS: weakref.WeakKeyDictionary[web.Application, asyncio.Lock] = weakref.WeakKeyDictionary()


def _setup_allowed(request: web.Request) -> None:
    """Only the bootstrap login may create the first user, and only while there is none."""
    identity = request[IDENTITY_KEY]
    if not request.app[AUTH_KEY].needs_setup:
        raise Conflict("a user is already configured: sign in with it")
    if identity is None or identity.kind != "bootstrap":
        raise Forbidden("only the one-time bootstrap sign-in can create the first user")


async def setup_page(request: web.Request) -> web.StreamResponse:
    """The form that creates the first admin user and, optionally, the first API token."""
    if not request.app[AUTH_KEY].needs_setup:
        raise web.HTTPSeeOther("/")
    _setup_allowed(request)
    return render(request, "setup.html", {"errors": [], "form": {"username": "admin", "token_name": "",
                                                                 "token_scope": "read"}, "scopes": SCOPES})


def _check_form(body: dict[str, Any]) -> list[str]:
    errors = []
    try:
        cv.slug(body["username"])
    except vol.Invalid:
        errors.append("Username: use lower-case letters, digits, '-' and '_'.")
    if len(body["password"]) < MIN_PASSWORD:
        errors.append(f"Password: at least {MIN_PASSWORD} characters.")
    elif body["password"] != body["confirm"]:
        errors.append("Password: the two entries differ.")
    if body["token_name"]:
        try:
            cv.slug(body["token_name"])
        except vol.Invalid:
            errors.append("Token name: use lower-case letters, digits, '-' and '_'.")
    return errors


def write_first_user(config_path: Path, username: str, password_hash: str,
                     token: tuple[str, str, str] | None) -> None:
    """Write the user (and token) to secrets.yaml and config.yaml, then re-check; blocks: file I/O.

    When the edited config does not validate with the new user in it, both files are put back as
    they were and ValidationFailed says why.
    """
    writer = ConfigWriter(config_path)
    saved = writer.snapshot()
    try:
        writer.add_user(username, password_hash)
        if token is not None:
            name, token_hash, scope = token
            writer.add_token(name, token_hash, [scope])
        checked = check_config(config_path)
        users = {u["username"] for u in checked.domains.get("auth", {}).get("users", [])}
        problems = [str(i) for i in checked.issues if i.path.startswith("auth")]
        if problems or username not in users:
            raise ValidationFailed("the edited config does not validate: " + "; ".join(problems or ["user missing"]))
    except BaseException:
        writer.restore(saved)
        raise


async def setup_submit(request: web.Request) -> web.StreamResponse:
    """Create the admin user (and token), sign them in, and end the bootstrap session."""
    app = request.app[APPLIANCE_KEY]
    auth = request.app[AUTH_KEY]
    body = request[BODY_KEY]
    async with _LOCKS.setdefault(request.app, asyncio.Lock()):  # two tabs must not both create a user
        _setup_allowed(request)
        errors = _check_form(body)
        if errors:
            form = {k: body[k] for k in ("username", "token_name", "token_scope")}
            return render(request, "setup.html", {"errors": errors, "form": form, "scopes": SCOPES}, status=400)
        username = body["username"]
        password_hash = await auth.gate.async_run(hash_password, body["password"])
        token = token_spec = None
        if body["token_name"]:
            token = generate_token()
            token_spec = (body["token_name"], hash_token(token), body["token_scope"])
        await app.async_run_blocking(write_first_user, app.config_path, username, password_hash, token_spec)
        auth.users[username] = password_hash
        app.redactor.add(password_hash)
        if token_spec is not None:
            auth.tokens.append((token_spec[0], token_spec[1], (token_spec[2],)))
    bootstrap = request[IDENTITY_KEY]
    source = client_ip(request)
    app.store.audit(bootstrap.actor if bootstrap else "anonymous", "setup", f"user:{username}", source=source,
                    details={"token": token_spec[0] if token_spec else None,
                             "scope": token_spec[2] if token_spec else None})
    _LOGGER.warning("First user %s created on the setup page; the bootstrap sign-in is closed", username)
    auth.logout(bootstrap.session_id if bootstrap else None)
    auth.sessions.end_kind("bootstrap")
    session = auth.sessions.create(username, "user", credential_mark(password_hash))
    request[IDENTITY_KEY] = auth.identity_for_session(session)
    if token is None:
        response: web.StreamResponse = web.HTTPSeeOther("/")
    else:
        response = render(request, "setup_done.html", {"token": token, "token_name": body["token_name"],
                                                       "token_scope": body["token_scope"]})
    response.set_cookie(cookie_name(request), session.id, httponly=True, samesite="Strict",
                        secure=is_https(request), path="/", max_age=int(auth.max_age))
    if isinstance(response, web.HTTPException):
        raise response
    return response


def register(routes: RouteTable) -> None:
    """Declare the setup page."""
    routes.get("/setup", setup_page, auth="admin", summary="First-user setup page", kind="ui")
    routes.post("/setup", setup_submit, auth="admin", summary="Create the first user (and API token)", kind="ui",
                body=SETUP_BODY, body_limit=8192)
