"""A webhook added or changed by a config reload is the one the receiver answers for (no restart)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import bearer
from tests.support.git import GitRemote

OLD, NEW = "the-first-secret-0123456789", "the-second-secret-0123456789"


def _signed(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Signature-256": f"sha256={digest}"}


async def test_reload_adds_a_webhook_and_replaces_its_secret(make_client: Any, tmp_path: Path) -> None:
    remote = GitRemote(tmp_path / "git")
    client = await make_client({"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
                                "webhooks": []})
    path = tmp_path / "config.yaml"
    ping = json.dumps({"event": "ping"}).encode()
    resp = await client.post("/hooks/infra", data=ping, headers=_signed(OLD, ping))
    assert resp.status == 404

    for secret in (OLD, NEW):
        data = yaml.safe_load(path.read_text())
        data["webhooks"] = [{"repo": "infra", "provider": "generic", "secret": secret}]
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        resp = await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))
        assert resp.status == 200, await resp.text()
        assert "webhooks" in (await resp.json())["reloaded"]
        body = json.dumps({"zen": secret}).encode()  # a new body each time: a repeated one reads as a replay
        resp = await client.post("/hooks/infra", data=body, headers={**_signed(secret, body), "X-Event": "ping"})
        assert resp.status == 200, await resp.text()
        assert (await resp.json()) == {"status": "ok", "event": "ping"}
    # The replaced secret no longer verifies.
    body = json.dumps({"zen": "again"}).encode()
    resp = await client.post("/hooks/infra", data=body, headers={**_signed(OLD, body), "X-Event": "ping"})
    assert resp.status == 401
