"""Stacks on other Docker engines: a second dockerd over TLS and one reached over SSH, outages and moves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from addons.engines.contract import ENGINES
from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from tests.conftest import bearer
from tests.support.dockerd import ExtraEngine
from tests.support.engines import SshEngine

from .conftest import GitRemote, StackApp, container_ids, httpd_compose, served, sync, wait_idle

pytestmark = pytest.mark.docker


def _tls(engine: ExtraEngine, name: str = "tls1") -> dict[str, Any]:
    assert engine.tls is not None
    return {"name": name, "url": engine.tcp_url, "check_interval": "2s",
            "tls": {"ca": str(engine.tls.ca), "cert": str(engine.tls.cert), "key": str(engine.tls.key)}}


def _ssh(host: SshEngine, name: str = "ssh1") -> dict[str, Any]:
    return {"name": name, "url": f"ssh://{host.user}@127.0.0.1:{host.port}", "ssh_key": str(host.key),
            "known_hosts": str(host.known_hosts), "socket": host.socket, "stacks_dir": host.stacks_dir,
            "check_interval": "2s"}


def _stack(name: str, folder: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "repo": "infra", "path": f"stacks/{folder}", "health_timeout": "20s", **extra}


@pytest.fixture
def remote_cleanup(tls_engine: ExtraEngine) -> Any:
    """Projects to remove from the TLS engine after the test."""
    projects: list[str] = []
    yield projects
    client = tls_engine.client()
    for project in projects:
        _remove_project(client, project)
    client.close()


def _remove_project(client: Any, project: str) -> None:
    """Remove a compose project's containers and networks from an engine."""
    label = {"label": f"com.docker.compose.project={project}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for network in client.networks.list(filters=label):
        network.remove()


async def test_stack_on_a_tls_engine_deploys_gates_and_rolls_back(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    tls_engine: ExtraEngine, remote_cleanup: list[str],
) -> None:
    name = f"far-{suffix}"
    remote_cleanup.append(f"dm-{name}")
    remote.commit({"stacks/far/compose.yaml": httpd_compose(busybox_image, "far-v1")}, "A stack for the TLS engine")
    client, app = await stacks_app([_stack(name, "far", engine="tls1")], engines=[_tls(tls_engine)],
                                   ops={"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *"})
    far = tls_engine.client()
    assert served(far, f"dm-{name}") == "far-v1"
    assert container_ids(docker_client, f"dm-{name}") == {}  # nothing on the local engine
    labels = far.containers.list(filters={"label": f"com.docker.compose.project=dm-{name}"})[0].labels
    assert labels["io.dockmaster.stack"] == name
    good = app.data[STACKS_SERVICE].engine.states.get(name)
    assert (good.engine, good.health) == ("tls1", "healthy")

    bad = remote.commit({"stacks/far/compose.yaml": httpd_compose(busybox_image, "far-v2", healthy=False)},
                        "An unhealthy revision")
    await sync(app)
    runs = list(reversed(await app.runs.list(target=name, limit=10)))
    assert [(r["kind"], r["status"]) for r in runs[-2:]] == [("deploy", "failed"), ("rollback", "succeeded")]
    failed = await app.runs.get(runs[-2]["id"])
    assert failed is not None and "on engine tls1" in failed["log"]
    state = app.data[STACKS_SERVICE].engine.states.get(name)
    assert bad in state.bad and state.health == "healthy"
    assert served(far, f"dm-{name}") == "far-v1"

    checked = await client.post("/api/v1/engines/tls1/check", headers=bearer("deploy"))
    assert checked.status == 200, await checked.text()
    resp = await client.get("/api/v1/engines", headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    engines = {e["name"]: e for e in (await resp.json())["engines"]}
    assert engines["tls1"]["reachable"] is True and engines["tls1"]["kind"] == "tls"
    assert engines["tls1"]["version"] and engines["tls1"]["running"] >= 1
    assert engines["local"]["reachable"] is True
    detail = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert detail["engine"] == "tls1" and [c["state"] for c in detail["containers"]] == ["running"]

    # The console reaches the stack on its engine: the containers page, a live log, a restart by service.
    page = await (await client.get("/containers?engine=tls1", headers=bearer("read"))).text()
    container = far.containers.list(filters={"label": f"com.docker.compose.project=dm-{name}"})[0]
    assert f'data-container="{container.name}"' in page and f'data-ops-restart="{name}/web"' in page
    async with client.ws_connect(f"/api/v1/ops/logs/{container.name}/follow?tail=5&engine=tls1",
                                 headers=bearer("read")) as ws:
        assert (await ws.receive_json(timeout=5))["container"] == container.name
    resp = await client.post("/api/v1/ops/container_restart", json={"target": f"{name}/web"},
                             headers=bearer("deploy"))
    assert resp.status == 200, await resp.text()
    assert [c["state"] for c in (await resp.json())["result"]["containers"]] == ["running"]
    assert (await client.get("/containers?engine=nope", headers=bearer("read"))).status == 404


async def test_stack_on_an_ssh_engine_gets_its_files_and_keeps_its_data(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    ssh_engine: SshEngine,
) -> None:
    name = f"viassh-{suffix}"
    compose = f"""services:
  web:
    image: {busybox_image}
    command: ["sh", "-c", "date >> /data/starts && exec httpd -f -p 8080 -h /www"]
    volumes: ["./site:/www:ro", "./data:/data"]
    ports: ["127.0.0.1::8080"]
    healthcheck: {{test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"], interval: 500ms,
                  timeout: 2s, retries: 2}}
"""
    remote.commit({"stacks/viassh/compose.yaml": compose, "stacks/viassh/site/index.html": "over ssh v1\n"},
                  "A stack for the SSH engine")
    engine_client = ssh_engine.engine.client()
    try:
        _, app = await stacks_app([_stack(name, "viassh", engine="ssh1")], engines=[_ssh(ssh_engine)])
        state = app.data[STACKS_SERVICE].engine.states.get(name)
        assert (state.engine, state.health) == ("ssh1", "healthy"), [
            (await app.runs.get(r["id"]) or {}).get("log") for r in await app.runs.list(target=name)]
        assert served(engine_client, f"dm-{name}") == "over ssh v1"
        remote.commit({"stacks/viassh/site/index.html": "over ssh v2\n"}, "New page")
        await sync(app)
        assert served(engine_client, f"dm-{name}") == "over ssh v2"
        # The bind sources live in the stack's folder on the SSH host, and ./data kept both starts.
        home = app.data[STACKS_SERVICE].engine.deployer.placement
        paths = await home.async_host_paths("ssh1")
        assert paths.host is not None
        code, out = ssh_engine.exec("cat", f"{paths.host}/{name}/work/data/starts")
        assert code == 0 and len(out.splitlines()) == 2, out
        # An unhealthy revision is gated and rolled back there too; the page's file and ./data stay.
        bad = remote.commit({"stacks/viassh/compose.yaml": compose.replace("127.0.0.1:8080/", "127.0.0.1:8081/"),
                             "stacks/viassh/site/index.html": "over ssh v3\n"}, "An unhealthy revision")
        await sync(app)
        runs = list(reversed(await app.runs.list(target=name, limit=10)))
        assert [(r["kind"], r["status"]) for r in runs[-2:]] == [("deploy", "failed"), ("rollback", "succeeded")]
        assert bad in state.bad and state.health == "healthy"
        assert served(engine_client, f"dm-{name}") == "over ssh v2"
        code, out = ssh_engine.exec("cat", f"{paths.host}/{name}/work/data/starts")
        assert code == 0 and len(out.splitlines()) == 4, out  # v2, the bad v3, and v2 again
    finally:
        _remove_project(engine_client, f"dm-{name}")
        engine_client.close()


async def test_engine_gone_mid_deploy_leaves_the_stack_unknown_and_the_next_run_succeeds(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    tls_engine: ExtraEngine, remote_cleanup: list[str],
) -> None:
    far, near = f"gone-{suffix}", f"near-{suffix}"
    remote_cleanup.append(f"dm-{far}")
    remote.commit({"stacks/gone/compose.yaml": httpd_compose(busybox_image, "gone-v1"),
                   "stacks/near/compose.yaml": httpd_compose(busybox_image, "near-v1")}, "Two stacks, two engines")
    client, app = await stacks_app([_stack(far, "gone", engine="tls1"), _stack(near, "near")],
                              engines=[_tls(tls_engine)])
    engine = app.data[STACKS_SERVICE].engine
    assert engine.states.get(far).health == "healthy"
    near_before = container_ids(docker_client, f"dm-{near}")

    # The new revision's health gate waits on a port nothing serves; the engine stops meanwhile.
    starting = httpd_compose(busybox_image, "gone-v2", healthy=False).replace("start_period: 0s", "start_period: 120s")
    sha = remote.commit({"stacks/gone/compose.yaml": starting}, "A revision still starting when the engine goes")
    await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="test sync")
    for _ in range(200):
        if any("health gate" in line for run in app.runs.active.values() for line in run.lines):
            break
        await asyncio.sleep(0.1)
    # Its containers keep running (--live-restore), as when a host drops off the network.
    await asyncio.to_thread(tls_engine.stop)
    try:
        await wait_idle(app, 90)
        state = engine.states.get(far)
        runs = list(reversed(await app.runs.list(target=far, limit=10)))
        assert runs[-1]["kind"] == "deploy" and runs[-1]["status"] == "failed", runs[-1]
        assert state.health == "unknown"
        assert sha not in state.bad  # the revision is not blamed for the engine's outage
        assert not any(r["kind"] == "rollback" for r in runs)
        assert engine.states.get(near).health == "healthy"
        assert container_ids(docker_client, f"dm-{near}") == near_before
        for _ in range(150):  # the failed run asked for a check: the outage is noticed without waiting
            if app.data[ENGINES].reachable("tls1") is False:
                break
            await asyncio.sleep(0.1)
        assert app.data[ENGINES].reachable("tls1") is False
    finally:
        await asyncio.to_thread(tls_engine.start)
    # Check now (the page's button): the engine answers, and the interrupted deploy runs again by itself.
    # That revision is unhealthy on its own merit, so this time it is marked bad and rolled back.
    resp = await client.post("/api/v1/engines/tls1/check", headers=bearer("deploy"))
    assert resp.status == 200 and (await resp.json())["reachable"] is True
    await asyncio.sleep(0.5)
    await wait_idle(app, 90)
    runs = list(reversed(await app.runs.list(target=far, limit=10)))
    assert "answers again" in runs[-2]["reason"], runs[-2:]
    assert [r["kind"] for r in runs[-2:]] == ["deploy", "rollback"]
    assert sha in engine.states.get(far).bad and engine.states.get(far).health == "healthy"
    remote.commit({"stacks/gone/compose.yaml": httpd_compose(busybox_image, "gone-v3")}, "Fixed")
    await sync(app)
    assert engine.states.get(far).health == "healthy"
    assert served(tls_engine.client(), f"dm-{far}") == "gone-v3"


async def test_a_config_edit_never_moves_a_stack_the_move_action_does(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    tls_engine: ExtraEngine, remote_cleanup: list[str],
) -> None:
    name = f"mover-{suffix}"
    remote_cleanup.append(f"dm-{name}")
    remote.commit({"stacks/mover/compose.yaml": httpd_compose(busybox_image, "mover-v1")}, "A stack to move")
    client, app = await stacks_app([_stack(name, "mover")])
    assert served(docker_client, f"dm-{name}") == "mover-v1"
    data = yaml.safe_load(app.config_path.read_text())
    data["stacks"][0]["engine"] = "tls1"
    data["engines"] = [_tls(tls_engine)]
    app.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    resp = await client.post("/api/v1/config/reload", json={}, headers=bearer("admin"))
    assert resp.status == 200, await resp.text()
    await wait_idle(app)

    # A deploy after the edit is refused with what to do; the stack keeps running where it was.
    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={}, headers=bearer("deploy"))
    assert resp.status == 202
    await wait_idle(app)
    last = (await app.runs.list(target=name, limit=1))[0]
    assert last["status"] == "failed" and "Move action" in last["error"], last
    assert served(docker_client, f"dm-{name}") == "mover-v1"
    detail = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert (detail["engine"], detail["moving_to"]) == ("local", "tls1")
    page = await client.get(f"/stacks/{name}", headers=bearer("read"))
    assert 'id="move"' in await page.text()

    resp = await client.post(f"/api/v1/stacks/{name}/move", json={}, headers=bearer("deploy"))
    assert resp.status == 202, await resp.text()
    await wait_idle(app)
    move = await app.runs.get((await resp.json())["run_id"])
    assert move is not None and (move["kind"], move["status"]) == ("move", "succeeded"), move
    assert served(tls_engine.client(), f"dm-{name}") == "mover-v1"
    assert container_ids(docker_client, f"dm-{name}") == {}  # taken down on the local engine
    detail = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert (detail["engine"], detail["moving_to"], detail["health"]) == ("tls1", None, "healthy")
    audit = await (await client.get("/api/v1/audit?action=stack.move", headers=bearer("admin"))).json()
    assert [(a["target"], a["details"]["to"]) for a in audit["audit"]] == [(name, "tls1")]
    # Moving again is refused: it already runs where its config says.
    again = await client.post(f"/api/v1/stacks/{name}/move", json={}, headers=bearer("deploy"))
    assert again.status == 409
