"""The operation API: listing with JSON Schemas, refusing unknown operations and arguments, scopes, audit."""

from __future__ import annotations

import pytest

from tests.addons.ops.conftest import audit_rows
from tests.conftest import bearer, sign_in


async def test_list_operations_with_schemas(make_client, ops_config) -> None:
    client = await make_client(ops_config)
    resp = await client.get("/api/v1/ops", headers=bearer("read"))
    assert resp.status == 200
    ops = {op["name"]: op for op in (await resp.json())["operations"]}
    assert {"containers_list", "container_restart", "container_stop", "container_start", "container_logs",
            "stack_pull", "stack_recreate", "stack_update", "images_prune", "disk_usage", "probes_run",
            "host_reboot_required", "host_journal", "images_check"} <= set(ops)
    restart = ops["container_restart"]
    assert restart["scope"] == "deploy" and restart["lock"] == "reject"
    assert restart["args"]["additionalProperties"] is False
    assert restart["args"]["properties"]["timeout"] == {"type": "integer", "minimum": 0, "maximum": 300,
                                                        "default": 10}
    assert restart["target"]["required"] is True
    assert (await client.get("/api/v1/ops")).status == 401


@pytest.mark.parametrize(
    ("op", "body", "message"),
    [
        ("no_such_op", {"target": "x"}, "unknown operation"),
        ("container_restart", {"target": "x", "args": {"timeout": 1, "command": "rm -rf /"}}, "unknown field"),
        ("container_restart", {"target": "x", "args": {"timeout": "sh -c reboot"}}, "args"),
        ("container_restart", {"target": "x; reboot"}, "invalid target"),
        ("container_restart", {"args": {}}, "needs a target"),
        ("disk_usage", {"target": "x"}, "takes no target"),
        ("container_restart", {"target": "x", "cmd": "reboot"}, "unknown field"),
        ("host_journal", {"target": "ssh.service"}, "invalid target"),
    ],
)
async def test_unknown_or_extra_arguments_are_refused_before_anything_runs(make_client, ops_config, op, body,
                                                                           message) -> None:
    client = await make_client(ops_config)
    resp = await client.post(f"/api/v1/ops/{op}", json=body, headers=bearer("admin"))
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_request"
    assert message in error["message"]
    runs = await (await client.get("/api/v1/runs", headers=bearer("read"))).json()
    assert runs["runs"] == []


async def test_scope_is_checked_per_operation(make_client, ops_config) -> None:
    client = await make_client(ops_config)
    resp = await client.post("/api/v1/ops/container_restart", json={"target": "nothing-here"}, headers=bearer("read"))
    assert resp.status == 403
    resp = await client.post("/api/v1/ops/images_prune", json={}, headers=bearer("deploy"))
    assert resp.status == 403
    assert (await (await client.get("/api/v1/runs", headers=bearer("read"))).json())["runs"] == []


async def test_session_post_needs_csrf(make_client, ops_config) -> None:
    client = await make_client(ops_config)
    csrf = await sign_in(client)
    resp = await client.post("/api/v1/ops/host_reboot_required", json={})
    assert resp.status == 403
    resp = await client.post("/api/v1/ops/host_reboot_required", json={}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "succeeded" and body["result"]["required"] in (True, False)
    rows = await audit_rows(client, "op:host_reboot_required")
    assert rows[0]["actor"] == "user:admin" and rows[0]["outcome"] == "succeeded"
    assert rows[0]["details"]["run_id"] == body["run_id"] and rows[0]["details"]["duration"] >= 0


async def test_reboot_required_flag(make_client, ops_config, tmp_path) -> None:
    flag = tmp_path / "host" / "reboot-required"
    flag.parent.mkdir()
    client = await make_client({"ops": {**ops_config["ops"], "reboot_required_file": str(flag)}})
    resp = await client.post("/api/v1/ops/host_reboot_required", json={}, headers=bearer("read"))
    assert (await resp.json())["result"]["required"] is False
    flag.write_text("*** System restart required ***\n")
    flag.with_name("reboot-required.pkgs").write_text("linux-image-amd64\nlibc6\n")
    resp = await client.post("/api/v1/ops/host_reboot_required", json={}, headers=bearer("read"))
    result = (await resp.json())["result"]
    assert result == {"required": True, "packages": ["libc6", "linux-image-amd64"], "flag": str(flag)}
