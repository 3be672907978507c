"""Deny by default: every route of a fully configured app refuses anonymous callers; sessions, CSRF, tokens."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY, AUTH_KEY
from appliance.sessions import session_key
from tests.appliance.full_config import full_config
from tests.conftest import ADMIN_PASSWORD, bearer, sign_in

SAFE = {"GET", "HEAD", "OPTIONS"}
PUBLIC_PATHS = {"/api/health", "/login"}


def _is_exempt(path: str, spec: Any) -> bool:
    """Routes the design lets through without credentials: health, login, static files, webhooks."""
    if path in PUBLIC_PATHS or path.startswith(("/static/", "/hooks/")) or path == "/static":
        return True
    return spec is not None and spec.kind in ("static", "hook")


def _sample(path: str) -> str:
    return re.sub(r"{[^}]+}", "1", path)


def _routes(client: TestClient) -> list[tuple[str, str, Any]]:
    found = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        assert path, route
        spec = getattr(route.handler, "__dockmaster_route__", None)
        found.append((route.method, path, spec))
    return found


@pytest.fixture
async def full_client(make_client) -> TestClient:
    return await make_client(full_config())


async def test_every_route_but_the_public_ones_refuses_anonymous_callers(full_client: TestClient) -> None:
    app = full_client.app[APPLIANCE_KEY]
    assert [e.error for e in app.addon_errors.values()] == []
    assert sorted(app.loaded_addons) == sorted(full_config())
    routes = _routes(full_client)
    paths = {path for _, path, _ in routes}
    assert {"/api/v1/status", "/api/v1/runs", "/api/v1/windows", "/", "/metrics"} <= paths
    checked = []
    for method, path, spec in routes:
        if _is_exempt(path, spec):
            continue
        resp = await full_client.request(method, _sample(path), allow_redirects=False)
        assert resp.status in (401, 403), f"{method} {path} answered {resp.status} without credentials"
        checked.append((method, path))
    assert len(checked) >= 10
    # The exempt set is exactly what the design allows: nothing else is public.
    public = {(m, p) for m, p, s in routes if s is not None and s.auth == "public"}
    assert all(_is_exempt(p, s) for m, p, s in routes if (m, p) in public)


async def test_undeclared_route_is_refused(make_client) -> None:
    client = await make_client()

    async def sneaky(request):
        raise AssertionError("must not run")

    client.app.router._frozen = False  # a route added behind the RouteTable's back
    client.app.router.add_get("/sneaky", sneaky)
    client.app.router._frozen = True
    resp = await client.get("/sneaky", headers=bearer("admin"))
    assert resp.status == 403


async def _snapshot(client: TestClient) -> dict[str, Any]:
    store = client.app[APPLIANCE_KEY].store
    await store.flush()
    counts = {}
    for table in ("runs", "audit", "kv"):
        row = await store.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        counts[table] = row["n"] if row else 0
    return counts


async def test_state_changing_session_requests_without_csrf_are_refused_and_do_nothing(
    full_client: TestClient,
) -> None:
    await sign_in(full_client)
    before = await _snapshot(full_client)
    changing = [(m, p, s) for m, p, s in _routes(full_client) if m not in SAFE and not _is_exempt(p, s)]
    assert ("POST", "/logout") in {(m, p) for m, p, _ in changing}
    for method, path, _spec in changing:
        resp = await full_client.request(method, _sample(path), json={}, allow_redirects=False)
        assert resp.status == 403, f"{method} {path} answered {resp.status} without a CSRF token"
        assert (await resp.json())["error"]["message"] == "missing or invalid CSRF token"
    assert await _snapshot(full_client) == before
    assert (await full_client.get("/api/v1/status")).status == 200  # the logout above did nothing


# --- sessions and cookies ------------------------------------------------------------------


ConfigEdit = Callable[[dict[str, Any]], None]


@pytest.fixture
def make_client_with(aiohttp_client: Any, write_config: Callable[..., Path]) -> Callable[..., Awaitable[TestClient]]:
    """Like make_client, with a function that edits the core blocks of the written config."""

    async def _make(edit: ConfigEdit, **kwargs: Any) -> TestClient:
        path = write_config(**kwargs)
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return await aiohttp_client(await create_app(path))

    return _make


def _set_cookie(resp: Any) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        cookie.load(header)
    return cookie


async def _login(client: TestClient, headers: dict[str, str] | None = None, **form: str) -> Any:
    data = {"username": "admin", "password": ADMIN_PASSWORD, "next": "/"} | form
    return await client.post("/login", data=data, headers=headers or {}, allow_redirects=False)


async def test_session_cookie_flags_on_plain_http(make_client) -> None:
    client = await make_client()
    resp = await _login(client)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = _set_cookie(resp)["dm_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"] and not cookie["domain"]


async def test_session_cookie_is_host_prefixed_and_secure_behind_a_trusted_https_proxy(make_client_with) -> None:
    client = await make_client_with(lambda c: c["http"].update(trusted_proxies=["127.0.0.1/32"]))
    resp = await _login(client, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    assert resp.status == 303
    cookies = _set_cookie(resp)
    assert "dm_session" not in cookies
    cookie = cookies["__Host-dm_session"]
    assert cookie["secure"] is True and cookie["httponly"] is True
    assert cookie["samesite"] == "Strict" and cookie["path"] == "/" and not cookie["domain"]
    store = client.app[APPLIANCE_KEY].store
    await store.flush()
    row = await store.fetchone("SELECT source FROM audit WHERE action = 'login' ORDER BY id DESC")
    assert row == {"source": "203.0.113.7"}


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(make_client_with) -> None:
    client = await make_client_with(lambda c: c["http"].update(trusted_proxies=["10.0.0.0/8"]))
    resp = await _login(client, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    assert "dm_session" in _set_cookie(resp)
    store = client.app[APPLIANCE_KEY].store
    await store.flush()
    row = await store.fetchone("SELECT source FROM audit WHERE action = 'login' ORDER BY id DESC")
    assert row == {"source": "127.0.0.1"}


async def test_new_session_id_at_every_login(make_client) -> None:
    client = await make_client()
    first = _set_cookie(await _login(client))["dm_session"].value
    second = _set_cookie(await _login(client))["dm_session"].value
    assert first != second
    sessions = client.app[AUTH_KEY].sessions.by_key
    assert session_key(first) not in sessions and session_key(second) in sessions
    client.session.cookie_jar.clear()
    resp = await client.get("/api/v1/status", cookies={"dm_session": first})
    assert resp.status == 401


async def test_logout_ends_the_session(make_client) -> None:
    client = await make_client()
    csrf = await sign_in(client)
    resp = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert client.app[AUTH_KEY].sessions.by_key == {}
    assert (await client.get("/api/v1/status")).status == 401


async def test_idle_timeout(make_client_with) -> None:
    client = await make_client_with(lambda c: c["http"].update(session_idle_timeout="1s", session_max_age="1h"))
    auth = client.app[AUTH_KEY]
    assert auth.idle_timeout == 1.0 and auth.max_age == 3600.0
    await sign_in(client)
    (session,) = auth.sessions.by_key.values()
    session.last_seen -= 2  # two seconds without a request
    assert (await client.get("/api/v1/status")).status == 401
    assert auth.sessions.by_key == {}


async def test_absolute_timeout_even_when_active(make_client_with) -> None:
    client = await make_client_with(lambda c: c["http"].update(session_idle_timeout="1h", session_max_age="10s"))
    auth = client.app[AUTH_KEY]
    await sign_in(client)
    (session,) = auth.sessions.by_key.values()
    assert (await client.get("/api/v1/status")).status == 200
    session.created -= 11
    session.last_seen = session.created + 10.5  # active a moment ago, but the session is too old
    assert (await client.get("/api/v1/status")).status == 401


async def test_unknown_user_and_wrong_password_get_the_same_answer(make_client) -> None:
    client = await make_client()
    wrong = await _login(client, password="not the password")
    unknown = await _login(client, username="nobody", password="not the password")
    assert wrong.status == unknown.status == 401
    assert await wrong.text() == await unknown.text()
    assert "Wrong username or password." in await wrong.text()
    assert not wrong.headers.getall("Set-Cookie", []) and not unknown.headers.getall("Set-Cookie", [])


async def test_login_throttling_is_per_account_and_address(make_client_with) -> None:
    client = await make_client_with(lambda c: c["http"].update(trusted_proxies=["127.0.0.1/32"]))
    there = {"X-Forwarded-For": "198.51.100.9"}
    for _ in range(5):
        assert (await _login(client, headers=there, password="wrong")).status == 401
    assert (await _login(client, headers=there, password="wrong")).status == 429
    assert (await _login(client, headers=there)).status == 429  # from there, even the right password waits
    assert (await _login(client, headers=there, username="other", password="wrong")).status == 401
    assert (await _login(client, headers=there, username="ADMIN", password="wrong")).status == 429  # names fold case
    assert (await _login(client, headers={"X-Forwarded-For": "198.51.100.10"})).status == 303  # elsewhere: at once


async def test_login_refuses_cross_site_posts_and_allows_same_origin(make_client) -> None:
    client = await make_client()
    host = f"{client.server.host}:{client.server.port}"
    assert (await _login(client, headers={"Origin": "https://evil.example"})).status == 403
    assert (await _login(client, headers={"Origin": "null"})).status == 403
    assert (await _login(client, headers={"Sec-Fetch-Site": "cross-site"})).status == 403
    assert (await _login(client, headers={"Referer": "https://evil.example/x"})).status == 403
    assert (await _login(client, headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})).status == 303


async def test_login_next_is_never_an_open_redirect(make_client) -> None:
    client = await make_client()
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)", "runs",
                   "/\\evil.example/", "/\\/evil.example/", "/\t/evil.example/"):
        assert (await _login(client, next=target)).headers["Location"] == "/"
    assert (await _login(client, next="/runs?status=failed")).headers["Location"] == "/runs?status=failed"


def _console_token(capsys: pytest.CaptureFixture[str]) -> str:
    match = re.search(r"bootstrap token\s+(\S+)\s", capsys.readouterr().err)
    assert match, "no bootstrap token on the console"
    return match.group(1)


async def test_bootstrap_token_is_one_time_when_no_user_is_configured(
    make_client, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await make_client(users=False, tokens=False)
    auth = client.app[AUTH_KEY]
    token = _console_token(capsys)
    assert auth.bootstrap_open and auth.needs_setup
    page = await (await client.get("/login")).text()
    assert "No user is configured yet" in page and "dockmaster hash-password" in page
    assert (await client.get("/api/v1/status")).status == 401
    assert (await client.get("/", allow_redirects=False)).status == 401
    assert (await _login(client, username="admin", password=ADMIN_PASSWORD)).status == 401
    assert (await _login(client, bootstrap_token="guess")).status == 401
    resp = await _login(client, bootstrap_token=token)
    assert resp.status == 303
    assert not auth.bootstrap_open
    assert (await client.get("/api/v1/status")).status == 200
    client.session.cookie_jar.clear()
    assert (await _login(client, bootstrap_token=token)).status == 401  # one time only


async def test_bootstrap_token_goes_to_the_console_once_and_never_to_the_log(
    make_client, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    client = await make_client(users=False, tokens=False)
    token = _console_token(capsys)
    assert "bootstrap token is printed on the console" in caplog.text
    assert token not in caplog.text
    auth = client.app[AUTH_KEY]
    assert token not in repr(vars(auth))  # only its hash is kept
    assert (await _login(client, bootstrap_token=token)).status == 303
    # Signed in as bootstrap: nothing the API answers carries the token.
    for path in ("/api/v1/status", "/api/v1/runs", "/api/v1/audit", "/", "/audit", "/metrics"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert token not in await resp.text(), path


@pytest.mark.parametrize("users", [True, False], ids=["users", "tokens-only"])
async def test_no_bootstrap_token_when_users_or_tokens_are_configured(
    make_client, capsys: pytest.CaptureFixture[str], users: bool
) -> None:
    client = await make_client(users=users, tokens=True)
    assert not client.app[AUTH_KEY].bootstrap_open
    assert "bootstrap token" not in capsys.readouterr().err
    assert (await _login(client, bootstrap_token="dm_anything")).status == 401


PROBE = '''
import voluptuous as vol
from aiohttp import web

DOMAIN = "scoped"
CONFIG_SCHEMA = vol.Schema({})


async def ok(request):
    return web.json_response({"ok": True})


async def async_setup(app, conf):
    app.api.get("/api/v1/scoped/read", ok, auth="read", summary="read")
    app.api.post("/api/v1/scoped/deploy", ok, auth="deploy", summary="deploy")
    app.api.post("/api/v1/scoped/admin", ok, auth="admin", summary="admin")
    return True
'''


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [("read", {"read"}), ("deploy", {"read", "deploy"}), ("admin", {"read", "deploy", "admin"})],
)
async def test_token_scopes_read_lt_deploy_lt_admin(make_client, custom_addon, scope: str, allowed: set) -> None:
    custom_addon("scoped", PROBE)
    client = await make_client("scoped: {}\n")
    for needed, method in (("read", "GET"), ("deploy", "POST"), ("admin", "POST")):
        resp = await client.request(method, f"/api/v1/scoped/{needed}", headers=bearer(scope))
        assert resp.status == (200 if needed in allowed else 403), (scope, needed)


async def test_tokens_need_no_csrf_and_sessions_with_csrf_pass(make_client, custom_addon) -> None:
    custom_addon("scoped", PROBE)
    client = await make_client("scoped: {}\n")
    assert (await client.post("/api/v1/scoped/admin", headers=bearer("admin"))).status == 200
    csrf = await sign_in(client)
    assert (await client.post("/api/v1/scoped/admin", headers={"X-CSRF-Token": csrf})).status == 200
    assert (await client.post("/api/v1/scoped/admin")).status == 403


async def test_sign_in_through_a_trusted_proxy_that_rewrites_the_host(make_client_with) -> None:
    client = await make_client_with(lambda c: c["http"].update(trusted_proxies=["127.0.0.1"]))
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dm.example.lan",
               "Origin": "https://dm.example.lan", "Sec-Fetch-Site": "same-origin"}
    resp = await _login(client, headers=proxied)
    assert resp.status == 303
    assert "__Host-dm_session" in _set_cookie(resp)
    # Without the proxy's word for the host, the same Origin is another site.
    plain = {"Origin": "https://dm.example.lan"}
    assert (await _login(client, headers=plain)).status == 403


UNFLAGGED_WS = '''
import voluptuous as vol
from aiohttp import web

DOMAIN = "wsprobe"
CONFIG_SCHEMA = vol.Schema({})


async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    await ws.close()
    return ws


async def async_setup(app, conf):
    app.api.get("/api/v1/wsprobe", echo, auth="read", summary="a WebSocket declared without websocket=True")
    return True
'''


async def test_cross_site_websocket_is_refused_even_when_the_route_forgot_its_flag(make_client, custom_addon) -> None:
    import aiohttp

    custom_addon("wsprobe", UNFLAGGED_WS)
    client = await make_client("wsprobe: {}\n")
    await sign_in(client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/v1/wsprobe", headers={"Origin": "https://evil.example"})
    assert info.value.status == 403
    host = f"{client.server.host}:{client.server.port}"
    async with client.ws_connect("/api/v1/wsprobe", headers={"Origin": f"http://{host}"}) as ws:
        assert (await ws.receive_str()) == "hello"
