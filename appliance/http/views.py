"""Core UI pages: login and logout, dashboard, runs, run page with live log, audit."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import voluptuous as vol
from aiohttp import web

from ..auth import LoginThrottled, SignInBusy
from ..errors import Forbidden, NotFound, TooManyRequests
from ..keys import APPLIANCE_KEY, AUTH_KEY, BODY_KEY, IDENTITY_KEY, QUERY_KEY
from .identity import actor, client_ip
from .middlewares import cookie_name, is_https, same_origin
from .routes import RouteTable
from .ui import render

_LOGGER = logging.getLogger(__name__)
_LOGIN_BODY = vol.Schema(
    {
        vol.Optional("username", default=""): vol.All(str, vol.Length(max=128)),
        vol.Optional("password", default=""): vol.All(str, vol.Length(max=1024)),
        vol.Optional("bootstrap_token", default=""): vol.All(str, vol.Length(max=256)),
        vol.Optional("next", default="/"): vol.All(str, vol.Length(max=2048)),
    }
)


def _safe_next(target: str) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    # Browsers read `\` as `/` (so `/\evil.example` is `//evil.example`) and drop tabs and newlines.
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_page(request: web.Request) -> web.Response:
    """The sign-in form (or the first-user guide when no user is configured)."""
    return render(request, "login.html", {"next": _safe_next(request.query.get("next", "/")), "error": None})


async def login_submit(request: web.Request) -> web.StreamResponse:
    """Check credentials; the same answer for an unknown user and a wrong password."""
    auth = request.app[AUTH_KEY]
    app = request.app[APPLIANCE_KEY]
    body = request[BODY_KEY]
    username = body["username"].strip()
    if not same_origin(request):
        # Login CSRF: another site must not sign a visitor in to an account it controls.
        app.store.audit(f"user:{username or '?'}", "login", source=client_ip(request), outcome="cross-site")
        raise Forbidden("cross-site sign-in refused")
    address = client_ip(request)
    try:
        if body["bootstrap_token"]:
            username = "bootstrap"
            session = auth.login_bootstrap(body["bootstrap_token"].strip(), address)
        else:
            session = await auth.async_login(username, body["password"], address)
    except LoginThrottled as err:
        app.store.audit(f"user:{username or '?'}", "login", source=address, outcome="throttled")
        raise TooManyRequests(str(err), details={"retry_after": err.retry_after}) from None
    except SignInBusy as err:
        # Not audited: under a flood this would write a row per refused request.
        raise TooManyRequests(str(err), details={"retry_after": 1}) from None
    if session is None:
        app.store.audit(f"user:{username or '?'}", "login", source=client_ip(request), outcome="denied")
        return render(request, "login.html", {"next": _safe_next(body["next"]),
                                              "error": "Wrong username or password."}, status=401)
    auth.logout(request.cookies.get(cookie_name(request)))  # a new session id at every login
    app.store.audit(f"{session.kind}:{session.username}", "login", source=client_ip(request))
    # The bootstrap login exists only to create the first user: it goes straight to the setup page.
    response = web.HTTPSeeOther("/setup" if session.kind == "bootstrap" else _safe_next(body["next"]))
    max_age = int(auth.max_age)
    response.set_cookie(cookie_name(request), session.id, httponly=True, samesite="Strict",
                        secure=is_https(request), path="/", max_age=max_age)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session."""
    auth = request.app[AUTH_KEY]
    identity = request[IDENTITY_KEY]
    if identity is not None:
        auth.logout(identity.session_id)
    request.app[APPLIANCE_KEY].store.audit(actor(request), "logout", source=client_ip(request))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(cookie_name(request), path="/", secure=is_https(request), httponly=True, samesite="Strict")
    raise response


async def dashboard(request: web.Request) -> web.Response:
    """Appliance status, addon errors and recent runs (updated live)."""
    app = request.app[APPLIANCE_KEY]
    runs = await app.runs.list(limit=15)
    await app.store.async_size()
    cards = []
    for card in list(app.ui.cards):
        try:
            data = await card.provider()
        except Exception:  # one addon's broken card must not take the dashboard down
            _LOGGER.exception("Dashboard card %s failed", card.name)
            continue
        if data is not None:
            cards.append({"name": card.name, "template": card.template, "data": data})
    return render(request, "dashboard.html", {"status": app.status(), "runs": runs, "cards": cards})


async def runs_page(request: web.Request) -> web.Response:
    """The runs list with filters."""
    app = request.app[APPLIANCE_KEY]
    query = request[QUERY_KEY]
    runs = await app.runs.list(kind=query.get("kind"), target=query.get("target"),
                               status=query.get("status"), limit=100, before=query.get("before"))
    return render(request, "runs.html", {"runs": runs, "filters": query})


async def run_page(request: web.Request) -> web.Response:
    """One run with its live log."""
    app = request.app[APPLIANCE_KEY]
    try:
        run_id = int(request.match_info["run_id"])
    except ValueError:
        raise NotFound("no such run") from None
    run = await app.runs.get(run_id)
    if run is None:
        raise NotFound("no such run")
    return render(request, "run.html", {"run": run, "details_json": json.dumps(run["details"], indent=2, default=str)})


async def audit_page(request: web.Request) -> web.Response:
    """The audit trail."""
    app = request.app[APPLIANCE_KEY]
    rows = await app.store.fetchall("SELECT * FROM audit ORDER BY id DESC LIMIT 200")
    return render(request, "audit.html", {"rows": rows})


_RUNS_PAGE_QUERY = {
    vol.Optional("kind"): str, vol.Optional("target"): str, vol.Optional("status"): str,
    vol.Optional("before"): vol.All(vol.Coerce(int), vol.Range(min=1)),
}


def register(routes: RouteTable) -> None:
    """Declare the core UI routes."""
    routes.get("/login", login_page, auth="public", summary="Sign-in page", kind="ui")
    routes.post("/login", login_submit, auth="public", summary="Sign in", kind="ui", body=_LOGIN_BODY,
                body_limit=8192)
    routes.post("/logout", logout, auth="session", summary="Sign out", kind="ui")
    routes.get("/", dashboard, auth="read", summary="Dashboard", kind="ui")
    routes.get("/runs", runs_page, auth="read", summary="Runs", kind="ui", query=_RUNS_PAGE_QUERY)
    routes.get("/runs/{run_id}", run_page, auth="read", summary="Run", kind="ui")
    routes.get("/audit", audit_page, auth="admin", summary="Audit", kind="ui")
