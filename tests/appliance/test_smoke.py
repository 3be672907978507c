"""The app starts from a minimal config, answers health, and refuses anonymous callers."""

from __future__ import annotations

from tests.conftest import bearer, sign_in


async def test_health_and_status(make_client) -> None:
    client = await make_client()
    resp = await client.get("/api/health")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    assert (await client.get("/api/v1/status")).status == 401
    resp = await client.get("/api/v1/status", headers=bearer("read"))
    assert resp.status == 200
    assert "addons" in await resp.json()


async def test_sign_in_and_dashboard(make_client) -> None:
    client = await make_client()
    csrf = await sign_in(client)
    assert csrf
    page = await (await client.get("/")).text()
    assert "Recent runs" in page
