"""`mode: swarm` stacks end to end: git → Swarm manager over TLS, a SOPS value as a Swarm secret, rollback."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from addons.stacks.swarm import remove_stack
from addons.stacks.swarm_spec import NAMESPACE_LABEL
from tests.conftest import bearer
from tests.support.dockerd import ExtraEngine
from tests.support.sops import age_key, encrypt_dotenv

from .conftest import GitRemote, StackApp, swarm_stack_yaml, sync

pytestmark = pytest.mark.docker


def _compose(image: str, *, probe: int = 8080) -> str:
    """The Swarm module tests' two-replica stack, its `token` secret given by the SOPS value TOKEN."""
    return swarm_stack_yaml(image=image, probe=probe).replace("file: ./token.txt", "environment: TOKEN")


def _served(client: Any, service: str) -> list[str]:
    """What each running task of a service serves, through its port published on the node (127.0.0.1)."""
    out = []
    for container in client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"}):
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            out.append(resp.read().decode().strip())
    return sorted(out)


def _engine(swarm: ExtraEngine) -> dict[str, Any]:
    assert swarm.tls is not None
    return {"name": "sw1", "url": swarm.tcp_url,
            "tls": {"ca": str(swarm.tls.ca), "cert": str(swarm.tls.cert), "key": str(swarm.tls.key)}}


async def test_swarm_stack_with_a_sops_secret_converges_rolls_back_and_goes_down(
    tmp_path: Path, remote: GitRemote, stacks_app: StackApp, busybox_image: str, suffix: str,
    swarm_engine: ExtraEngine,
) -> None:
    name = f"sw-{suffix}"
    namespace = f"dm-{name}"
    key_file = tmp_path / "keys" / "age.txt"
    key_file.parent.mkdir()
    recipient = age_key(key_file)
    remote.commit({
        "stacks/sw/compose.yaml": _compose(busybox_image),
        "stacks/sw/secrets.sops.env": encrypt_dotenv(tmp_path, recipient, "TOKEN=first-token-value\n"),
    }, "A Swarm stack")
    stack = {"name": name, "repo": "infra", "path": "stacks/sw", "engine": "sw1", "mode": "swarm",
             "sops": ["secrets.sops.env"], "health_timeout": "60s"}
    far = swarm_engine.client()
    try:
        client, app = await stacks_app([stack, {"settings": {"sops_age_key_file": str(key_file)}}],
                                       engines=[_engine(swarm_engine)])
        engine = app.data[STACKS_SERVICE].engine
        state = engine.states.get(name)
        runs = await app.runs.list(target=name)
        assert (state.engine, state.mode, state.health) == ("sw1", "swarm", "healthy"), [
            (await app.runs.get(r["id"]) or {}).get("log") for r in runs]
        assert _served(far, f"{namespace}_web") == ["first-token-value"] * 2
        secrets = {s.name for s in far.secrets.list(filters={"label": f"{NAMESPACE_LABEL}={namespace}"})}
        assert len(secrets) == 1 and next(iter(secrets)).startswith(f"{namespace}_token_")
        # The value reached the engine as a Swarm secret only: not the run log, not the working folder.
        log = (await app.runs.get(runs[0]["id"]) or {})["log"]
        assert "first-token-value" not in log and "converge" in log
        work = Path(app.data_dir) / "stacks" / name / "work"
        assert not any("first-token-value" in p.read_text(errors="replace") for p in work.rglob("*") if p.is_file())
        service = far.services.get(f"{namespace}_web")
        assert service.attrs["Spec"]["Labels"]["io.dockmaster.stack"] == name

        # An update whose healthcheck never passes: Swarm pauses it, Dockmaster reports it and rolls back.
        bad = remote.commit({"stacks/sw/compose.yaml": _compose(busybox_image, probe=8081)}, "A failing update")
        await sync(app)
        runs = list(reversed(await app.runs.list(target=name, limit=10)))
        assert [(r["kind"], r["status"]) for r in runs[-2:]] == [("deploy", "failed"), ("rollback", "succeeded")]
        assert "update paused" in (runs[-2]["error"] or "") or "unhealthy" in (runs[-2]["error"] or ""), runs[-2]
        assert bad in engine.states.get(name).bad and engine.states.get(name).health == "healthy"
        assert _served(far, f"{namespace}_web") == ["first-token-value"] * 2

        # A new secret value is a new secret version; the old one goes once the stack converged.
        remote.commit({"stacks/sw/compose.yaml": _compose(busybox_image),
                       "stacks/sw/secrets.sops.env": encrypt_dotenv(tmp_path, recipient, "TOKEN=second-token-value\n")},
                      "Rotate the token")
        await sync(app)
        assert engine.states.get(name).health == "healthy"
        assert _served(far, f"{namespace}_web") == ["second-token-value"] * 2
        rotated = {s.name for s in far.secrets.list(filters={"label": f"{NAMESPACE_LABEL}={namespace}"})}
        assert len(rotated) == 1 and rotated != secrets

        # Restart does not apply to a Swarm stack; Down removes its services (volumes would stay).
        resp = await client.post(f"/api/v1/stacks/{name}/down", json={}, headers=bearer("deploy"))
        assert resp.status == 202
        await sync(app)
        assert far.services.list(filters={"label": f"{NAMESPACE_LABEL}={namespace}"}) == []
        assert engine.states.get(name).desired == "down"
    finally:
        remove_stack(far, namespace)
        far.close()
