"""Smaller hardening: security headers on every answer, the https cookie, bodies refused where none is taken."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY
from tests.appliance.full_config import full_config
from tests.conftest import ADMIN_PASSWORD, bearer, sign_in


def _assert_headers(resp: Any) -> None:
    assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.url
    assert resp.headers["X-Frame-Options"] == "DENY", resp.url
    assert resp.headers["Referrer-Policy"] == "same-origin", resp.url
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], resp.url


async def test_security_headers_on_every_answer_errors_included(make_client) -> None:
    client = await make_client()
    answers = [
        (await client.get("/api/health"), 200),
        (await client.get("/api/v1/status"), 401),
        (await client.get("/nowhere", headers=bearer("admin")), 404),
        (await client.get("/api/v1/audit", headers=bearer("read")), 403),
        (await client.put("/api/v1/status", headers=bearer("read")), 405),
        (await client.get("/api/v1/runs?limit=0", headers=bearer("read")), 400),
        (await client.get("/api/v1/status", headers={"Authorization": "Basic x"}), 401),
        (await client.post("/login", data={"username": "admin", "password": "x"}, allow_redirects=False), 401),
        (await client.get("/", allow_redirects=False), 401),
    ]
    for resp, status in answers:
        assert resp.status == status, (resp.url, resp.status)
        _assert_headers(resp)
    for _ in range(5):
        await client.post("/login", data={"username": "admin", "password": "x"}, allow_redirects=False)
    resp = await client.post("/login", data={"username": "admin", "password": "x"}, allow_redirects=False)
    assert resp.status == 429
    _assert_headers(resp)


async def test_over_https_only_the_host_prefixed_cookie_counts(aiohttp_client, write_config) -> None:
    path = write_config()
    data = yaml.safe_load(path.read_text())
    data["http"]["trusted_proxies"] = ["127.0.0.1/32"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    client = await aiohttp_client(await create_app(path))
    https = {"X-Forwarded-Proto": "https"}
    resp = await client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD}, headers=https,
                             allow_redirects=False)
    session_id = resp.cookies["__Host-dm_session"].value
    client.session.cookie_jar.clear()
    assert (await client.get("/api/v1/status", headers=https,
                             cookies={"__Host-dm_session": session_id})).status == 200
    # The same id in the plain cookie (planted over http or by a sibling host) is not accepted over https.
    assert (await client.get("/api/v1/status", headers=https, cookies={"dm_session": session_id})).status == 401


async def test_every_state_changing_route_declares_a_body_schema(make_client) -> None:
    client = await make_client(full_config())
    app = client.app[APPLIANCE_KEY]
    missing = [f"{s.method} {s.path}" for s in app.api.routes
               if s.method in ("POST", "PUT", "PATCH") and s.body is None and s.kind != "hook"]
    assert missing == []


@pytest.mark.parametrize("path", ["/api/v1/repos/demo/sync", "/api/v1/notify/test"])
async def test_unknown_fields_in_a_post_without_input_are_refused(make_client, path: str) -> None:
    client = await make_client(full_config())
    resp = await client.post(path, json={"surprise": 1}, headers=bearer("admin"))
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["problems"][0]["message"] == "unknown field"


async def test_sign_out_form_with_unknown_fields_is_refused(make_client) -> None:
    client = await make_client()
    csrf = await sign_in(client)
    resp = await client.post("/logout", data={"csrf_token": csrf, "everyone": "yes"}, allow_redirects=False)
    assert resp.status == 400
    resp = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
