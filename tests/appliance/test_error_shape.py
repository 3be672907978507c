"""Every error path answers with the one JSON shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import bearer, sign_in

PROBE = '''
"""A test addon with a body, a query, and handlers that fail on purpose."""
import voluptuous as vol
from aiohttp import web

from appliance.errors import Conflict

DOMAIN = "probe"
CONFIG_SCHEMA = vol.Schema({})
BODY = {vol.Required("name"): str, vol.Optional("dry_run", default=False): bool}
QUERY = {vol.Optional("count", default=1): vol.All(vol.Coerce(int), vol.Range(min=1, max=10))}


async def echo(request):
    from appliance.keys import BODY_KEY, QUERY_KEY

    return web.json_response({"body": request[BODY_KEY], "query": request[QUERY_KEY]})


async def busy(request):
    raise Conflict("stack web is deploying", details={"run_id": 7})


async def crash(request):
    raise ZeroDivisionError("secret internals")


async def async_setup(app, conf):
    app.api.post("/api/v1/probe/echo", echo, auth="deploy", summary="Echo", body=BODY, query=QUERY)
    app.api.post("/api/v1/probe/busy", busy, auth="deploy", summary="Busy")
    app.api.get("/api/v1/probe/crash", crash, auth="read", summary="Crash")
    return True
'''


async def assert_error(resp: Any, status: int, code: str, message: str | None = None,
                       details: dict | None = None) -> dict:
    """Check the status and the exact shape; returns the error object."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    data = await resp.json()
    assert set(data) == {"error"}
    error = data["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if message is not None:
        assert error["message"] == message
    if details is not None:
        assert error["details"] == details
    return error


@pytest.fixture
async def client(make_client, custom_addon) -> TestClient:
    custom_addon("probe", PROBE)
    return await make_client("probe: {}\n")


async def test_the_probe_route_works(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/echo?count=3", json={"name": "web"}, headers=bearer("deploy"))
    assert resp.status == 200
    assert await resp.json() == {"body": {"name": "web", "dry_run": False}, "query": {"count": 3}}


async def test_400_invalid_body(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/echo", json={"name": 5, "dry_run": "maybe"}, headers=bearer("deploy"))
    error = await assert_error(resp, 400, "invalid_request")
    problems = {p["path"]: p["message"] for p in error["details"]["problems"]}
    assert problems == {"name": "expected str", "dry_run": "expected bool"}
    assert error["message"].startswith("invalid body: ")


async def test_400_missing_field(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/echo", json={}, headers=bearer("deploy"))
    await assert_error(resp, 400, "invalid_request", "invalid body: name: required key not provided",
                       {"problems": [{"path": "name", "message": "required key not provided"}]})


async def test_400_unknown_field(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/echo", json={"name": "web", "force": True}, headers=bearer("deploy"))
    await assert_error(resp, 400, "invalid_request", "invalid body: force: unknown field",
                       {"problems": [{"path": "force", "message": "unknown field"}]})


async def test_400_body_not_json(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/echo", data=b"{nope", headers={**bearer("deploy"),
                                                                          "Content-Type": "application/json"})
    error = await assert_error(resp, 400, "invalid_request")
    assert error["message"].startswith("body is not valid JSON")


async def test_400_invalid_query(client: TestClient) -> None:
    resp = await client.get("/api/v1/runs?limit=abc", headers=bearer("read"))
    error = await assert_error(resp, 400, "invalid_request")
    assert error["details"]["problems"][0]["path"] == "limit"
    resp = await client.post("/api/v1/probe/echo?count=99", json={"name": "x"}, headers=bearer("deploy"))
    await assert_error(resp, 400, "invalid_request", "invalid query: count: value must be at most 10")


async def test_400_invalid_query_value(client: TestClient) -> None:
    resp = await client.get("/api/v1/runs?status=sleeping", headers=bearer("read"))
    error = await assert_error(resp, 400, "invalid_request")
    assert error["details"]["problems"][0]["path"] == "status"


async def test_401_without_credentials(client: TestClient) -> None:
    await assert_error(await client.get("/api/v1/status"), 401, "unauthorized", "sign in or send an API token")


async def test_401_bad_token(client: TestClient) -> None:
    resp = await client.get("/api/v1/status", headers={"Authorization": "Bearer dm_wrong"})
    await assert_error(resp, 401, "unauthorized", "invalid API token")


async def test_401_malformed_authorization(client: TestClient) -> None:
    resp = await client.get("/api/v1/status", headers={"Authorization": "Basic YWRtaW46eA=="})
    await assert_error(resp, 401, "unauthorized", "Authorization header must be 'Bearer <token>'")


async def test_401_expired_session(client: TestClient) -> None:
    from appliance.keys import AUTH_KEY

    await sign_in(client)
    client.app[AUTH_KEY].sessions.by_key.clear()  # as after an idle timeout
    await assert_error(await client.get("/api/v1/status"), 401, "unauthorized")


async def test_403_missing_scope(client: TestClient) -> None:
    await assert_error(await client.get("/api/v1/audit", headers=bearer("read")), 403, "forbidden",
                       "this needs the 'admin' scope")
    resp = await client.post("/api/v1/probe/echo", json={"name": "x"}, headers=bearer("read"))
    await assert_error(resp, 403, "forbidden", "this needs the 'deploy' scope")


async def test_403_missing_and_wrong_csrf(client: TestClient) -> None:
    await sign_in(client)
    resp = await client.post("/api/v1/probe/echo", json={"name": "x"})
    await assert_error(resp, 403, "forbidden", "missing or invalid CSRF token")
    resp = await client.post("/api/v1/probe/echo", json={"name": "x"}, headers={"X-CSRF-Token": "guess"})
    await assert_error(resp, 403, "forbidden", "missing or invalid CSRF token")


async def test_403_cross_site_login(client: TestClient) -> None:
    resp = await client.post("/login", data={"username": "admin", "password": "x"},
                             headers={"Origin": "https://evil.example"}, allow_redirects=False)
    await assert_error(resp, 403, "forbidden", "cross-site sign-in refused")


async def test_404_unknown_route(client: TestClient) -> None:
    resp = await client.get("/api/v1/nothing-here", headers=bearer("admin"))
    await assert_error(resp, 404, "not_found", "not found")
    await assert_error(await client.get("/nothing-here"), 404, "not_found")


async def test_404_unknown_run(client: TestClient) -> None:
    await assert_error(await client.get("/api/v1/runs/424242", headers=bearer("read")), 404, "not_found",
                       "no such run")
    await assert_error(await client.get("/api/v1/runs/424242/log", headers=bearer("read")), 404, "not_found")


async def test_405_wrong_method(client: TestClient) -> None:
    resp = await client.delete("/api/health")
    error = await assert_error(resp, 405, "method_not_allowed",
                               "method DELETE is not allowed here (allowed: GET)")
    assert error["details"] == {"method": "DELETE", "allowed": ["GET"]}
    assert resp.headers["Allow"] == "GET"


async def test_409_conflict_keeps_details(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/busy", headers=bearer("deploy"))
    await assert_error(resp, 409, "conflict", "stack web is deploying", {"run_id": 7})


async def test_413_body_over_one_mib(client: TestClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    resp = await client.post("/api/v1/probe/echo", data=io.BytesIO(big),
                             headers={**bearer("deploy"), "Content-Type": "application/json"})
    await assert_error(resp, 413, "payload_too_large")


async def test_413_streamed_body_without_length(client: TestClient) -> None:
    async def chunks():
        for _ in range(20):
            yield b"x" * 65536 * 2

    resp = await client.post("/api/v1/probe/echo", data=chunks(),
                             headers={**bearer("deploy"), "Content-Type": "application/json"})
    await assert_error(resp, 413, "payload_too_large")


async def test_415_wrong_content_type(client: TestClient) -> None:
    resp = await client.post("/api/v1/probe/echo", data=b"name=web",
                             headers={**bearer("deploy"), "Content-Type": "text/plain"})
    await assert_error(resp, 415, "unsupported_media_type", "body must be application/json")


async def test_429_login_throttling(client: TestClient) -> None:
    for _ in range(5):
        resp = await client.post("/login", data={"username": "admin", "password": "wrong"}, allow_redirects=False)
        assert resp.status == 401
    resp = await client.post("/login", data={"username": "admin", "password": "wrong"}, allow_redirects=False)
    error = await assert_error(resp, 429, "too_many_requests", "too many failed sign-ins; try again later")
    assert 0 < error["details"]["retry_after"] <= 300
    assert 1 <= int(resp.headers["Retry-After"]) <= 301


async def test_500_hides_internals(client: TestClient) -> None:
    resp = await client.get("/api/v1/probe/crash", headers=bearer("read"))
    await assert_error(resp, 500, "internal_error", "internal error; see the Dockmaster log", {})
    assert "secret internals" not in await resp.text()
