"""The core HTTP surface on the real app: OpenAPI from the route table, metrics, live events, log follow."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from appliance.http.openapi import build_openapi
from appliance.keys import APPLIANCE_KEY, LIVE_KEY
from tests.conftest import bearer, sign_in

WINDOWS = {"windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h"}}}


async def test_health_is_public_and_cheap(make_client) -> None:
    client = await make_client()
    resp = await client.get("/api/health")
    assert resp.status == 200
    data = await resp.json()
    assert data["status"] == "ok" and re.fullmatch(r"\d+\.\d+\.\d+.*", data["version"])
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def _check_schema_object(schema: object, where: str) -> None:
    assert isinstance(schema, dict), where
    if "$ref" in schema:
        assert schema["$ref"].startswith("#/components/schemas/"), where
        return
    allowed_types = {"object", "array", "string", "integer", "number", "boolean", "null"}
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert set(types) <= allowed_types, where
    for key in ("properties",):
        for name, sub in schema.get(key, {}).items():
            _check_schema_object(sub, f"{where}.{name}")
    if "items" in schema:
        _check_schema_object(schema["items"], f"{where}[]")


async def test_openapi_document_is_valid_and_lists_every_api_route(make_client) -> None:
    client = await make_client(WINDOWS)
    resp = await client.get("/api/openapi.json", headers=bearer("read"))
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc) >= {"openapi", "info", "paths", "components"}
    assert doc["info"]["title"].startswith("Dockmaster API") and doc["info"]["version"]
    operation_ids: set[str] = set()
    for path, methods in doc["paths"].items():
        assert path.startswith("/")
        for method, op in methods.items():
            assert method in {"get", "post", "patch", "put", "delete"}
            assert op["summary"] and op["responses"]
            assert op["operationId"] not in operation_ids
            operation_ids.add(op["operationId"])
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status) and response["description"]
            for param in op.get("parameters", []):
                assert param["in"] in {"path", "query"} and param["name"]
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path and param["required"] is True
                _check_schema_object(param["schema"], f"{path} {param['name']}")
            if "requestBody" in op:
                _check_schema_object(op["requestBody"]["content"]["application/json"]["schema"], path)
            for requirement in op["security"]:
                assert set(requirement) <= set(doc["components"]["securitySchemes"])
    app = client.app[APPLIANCE_KEY]
    declared = {(spec.method.lower(), spec.path) for spec in app.api.routes if spec.kind in ("api", "hook")}
    documented = {(method, path) for path, methods in doc["paths"].items() for method in methods}
    assert declared == documented
    assert ("get", "/api/v1/windows") in documented
    assert doc["paths"]["/api/v1/runs"]["get"]["x-required-scope"] == "read"
    assert doc["paths"]["/api/health"]["get"]["security"] == []
    query = {p["name"] for p in doc["paths"]["/api/v1/runs"]["get"]["parameters"]}
    assert query == {"kind", "target", "status", "limit", "before"}


def test_openapi_request_body_comes_from_the_voluptuous_schema() -> None:
    import voluptuous as vol

    from appliance.http.routes import RouteTable

    async def handler(request):
        raise NotImplementedError

    table = RouteTable()
    table.post("/api/v1/things/{name}/deploy", handler, auth="deploy", summary="Deploy a thing",
               body={vol.Optional("dry_run", default=False): bool, vol.Required("revision"): str})
    doc = build_openapi(table.routes)
    op = doc["paths"]["/api/v1/things/{name}/deploy"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["dry_run"]["type"] == "boolean"
    assert schema["required"] == ["revision"]
    assert op["parameters"] == [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    assert set(op["responses"]) == {"200", "400", "401", "403"}


async def test_docs_page_is_offline(make_client) -> None:
    client = await make_client(WINDOWS)
    await sign_in(client)
    resp = await client.get("/api/docs")
    assert resp.status == 200
    page = await resp.text()
    assert "/api/v1/runs" in page and "/api/v1/windows" in page
    assert not re.search(r"""(src|href)=['"]https?://""", page)


async def test_metrics_text(make_client) -> None:
    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    async with app.runs.track("deploy", "web", trigger="api", reason="r"):
        pass
    resp = await client.get("/metrics", headers=bearer("read"))
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert re.search(r'^dockmaster_info\{name="test",version="[^"]+"\} 1\.0$', text, re.M)
    assert re.search(r'^dockmaster_runs_total\{kind="deploy",status="succeeded"\} 1\.0$', text, re.M)
    assert re.search(r'^dockmaster_events_total\{type="run_started"\} 1\.0$', text, re.M)
    assert re.search(r"^dockmaster_active_runs 0\.0$", text, re.M)
    assert re.search(r"^dockmaster_addons_failed 0\.0$", text, re.M)
    assert "# TYPE dockmaster_runs_total counter" in text
    assert (await client.get("/metrics")).status == 401


async def _next_event(ws: aiohttp.ClientWebSocketResponse, type_: str) -> dict:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] == type_:
            return data


async def test_websocket_receives_run_started_live(make_client) -> None:
    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    async with client.ws_connect("/api/v1/events", headers=bearer("read")) as ws:
        for _ in range(50):
            if client.app[LIVE_KEY].clients:
                break
            await asyncio.sleep(0.02)
        run = await app.runs.create("deploy", "web", trigger="manual", reason="because", status="running")
        event = await _next_event(ws, "run_started")
        assert event["run_id"] == run.id and event["target"] == "web" and event["reason"] == "because"
        run.log("hello")
        assert (await _next_event(ws, "run_log"))["lines"][0].endswith("hello")
        await app.runs.finish(run, "succeeded")
        assert (await _next_event(ws, "run_finished"))["status"] == "succeeded"


async def test_websocket_type_filter(make_client) -> None:
    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    async with client.ws_connect("/api/v1/events?types=run_finished", headers=bearer("read")) as ws:
        for _ in range(50):
            if client.app[LIVE_KEY].clients:
                break
            await asyncio.sleep(0.02)
        run = await app.runs.create("deploy", "web", trigger="manual", reason="r", status="running")
        run.log("noise")
        await app.runs.finish(run, "failed", error="boom")
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert json.loads(msg.data)["type"] == "run_finished"


async def test_websocket_needs_credentials_and_same_origin(make_client) -> None:
    client = await make_client()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/v1/events")
    assert info.value.status == 401
    await sign_in(client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/v1/events", headers={"Origin": "https://evil.example"})
    assert info.value.status == 403
    host = f"{client.server.host}:{client.server.port}"
    async with client.ws_connect("/api/v1/events", headers={"Origin": f"http://{host}"}) as ws:
        assert not ws.closed


async def test_slow_websocket_client_is_disconnected_not_silently_behind(make_client, monkeypatch) -> None:
    from appliance.http import live

    monkeypatch.setattr(live, "CLIENT_QUEUE", 5)
    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    hub = client.app[LIVE_KEY]
    async with client.ws_connect("/api/v1/events", headers=bearer("read")) as ws:
        for _ in range(50):
            if hub.clients:
                break
            await asyncio.sleep(0.02)
        run = await app.runs.create("deploy", "web", trigger="manual", reason="r", status="running")
        for i in range(50):  # synchronously: the sender gets no chance to drain in between
            run.log(f"line {i}")
        assert hub.clients == 0 and hub.dropped == 1
        closed = None
        for _ in range(60):
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                closed = msg
                break
        assert closed is not None
        assert ws.close_code == 1013
        await app.runs.finish(run, "succeeded")


async def test_run_log_follow_streams_until_the_run_ends(make_client) -> None:
    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    run = await app.runs.create("deploy", "web", trigger="manual", reason="r", status="running")
    run.log("first line")
    resp = await client.get(f"/api/v1/runs/{run.id}/log?follow=true", headers=bearer("read"))
    assert resp.status == 200
    first = await asyncio.wait_for(resp.content.readline(), 5)
    assert first.decode().rstrip().endswith("first line")

    async def produce() -> None:
        await asyncio.sleep(0.1)
        run.log("second line")
        await asyncio.sleep(0.1)
        run.log("third line")
        await app.runs.finish(run, "succeeded")

    producer = asyncio.create_task(produce())
    rest = await asyncio.wait_for(resp.content.read(), 5)
    await producer
    lines = [line for line in rest.decode().splitlines() if line]
    assert [line.split(" ", 1)[1] for line in lines] == ["second line", "third line"]
    # Without follow (or once finished) the whole log comes at once.
    text = await (await client.get(f"/api/v1/runs/{run.id}/log", headers=bearer("read"))).text()
    assert [line.split(" ", 1)[1] for line in text.splitlines()] == ["first line", "second line", "third line"]
    assert (await client.get("/api/v1/runs/999/log", headers=bearer("read"))).status == 404


async def test_run_log_follow_survives_the_size_cap(make_client) -> None:
    from appliance.const import RUN_LOG_CAP

    client = await make_client()
    app = client.app[APPLIANCE_KEY]
    run = await app.runs.create("deploy", "web", trigger="manual", reason="r", status="running")
    resp = await client.get(f"/api/v1/runs/{run.id}/log?follow=true", headers=bearer("read"))
    assert resp.status == 200
    line = "z" * 1000
    count = RUN_LOG_CAP // 1000 * 2
    for i in range(count):
        run.log(f"{i:05d} {line}")
        if i % 50 == 0:
            await asyncio.sleep(0)
    run.log("last")
    await app.runs.finish(run, "succeeded")
    body = (await asyncio.wait_for(resp.content.read(), 10)).decode()
    assert body.rstrip().endswith("last")
    numbers = [int(x.split(" ")[1]) for x in body.splitlines() if x and x.split(" ")[1].isdigit()]
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))
