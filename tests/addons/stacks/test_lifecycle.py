"""Stack lifecycle on the real engine: stop, start, restart, down, and stacks that left git or the config."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import docker
import pytest

from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from tests.conftest import bearer, sign_in

from .conftest import GitRemote, StackApp, container_ids, sync, wait_idle
from .test_stack_data import data_compose

pytestmark = pytest.mark.docker

VOLUME_BLOCK = "    volumes: [\"./data:/data\", \"cache:/cache\"]\n"


def _with_volume(image: str, content: str) -> str:
    """The data service with a named volume too (down must keep it)."""
    text = data_compose(image, content).replace('    volumes: ["./data:/data"]\n', VOLUME_BLOCK)
    return text + "volumes:\n  cache: {}\n"


def _stack(name: str, folder: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "repo": "infra", "path": f"stacks/{folder}", "health_timeout": "20s", **extra}


def _states(docker_client: Any, project: str) -> list[str]:
    return [c.status for c in docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"})]


def _remove_volume(docker_client: Any, project: str, app: Any) -> None:
    """The test's own cleanup of the named volume (after the project's containers)."""
    label = {"label": f"com.docker.compose.project={project}"}
    for container in docker_client.containers.list(all=True, filters=label):
        container.remove(force=True)
    docker_client.volumes.get(f"{project}_cache").remove(force=True)


async def _act(client: Any, app: Any, name: str, action: str, scope: str = "deploy") -> dict[str, Any]:
    resp = await client.post(f"/api/v1/stacks/{name}/{action}", json={}, headers=bearer(scope))
    assert resp.status == 202, await resp.text()
    await wait_idle(app)
    run: dict[str, Any] = await app.runs.get((await resp.json())["run_id"])
    return run


async def test_stop_start_restart_and_down_keep_data_and_volumes(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"life-{suffix}"
    project = f"dm-{name}"
    remote.commit({"stacks/life/compose.yaml": _with_volume(busybox_image, "v1")}, "Stack")
    client, app = await stacks_app([_stack(name, "life")])
    work = app.data_dir / "stacks" / name / "work"
    assert _states(docker_client, project) == ["running"]
    assert (await client.post(f"/api/v1/stacks/{name}/stop", json={}, headers=bearer("read"))).status == 403
    assert (await client.post(f"/api/v1/stacks/{name}/stop", json={"x": 1}, headers=bearer("deploy"))).status == 400

    stopped = await _act(client, app, name, "stop")
    assert stopped["kind"] == "stop" and stopped["status"] == "succeeded", stopped
    assert _states(docker_client, project) == ["exited"]
    summary = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert summary["desired"] == "stopped" and summary["health"] == "stopped"
    # Stopped by a person: neither drift healing nor a new commit starts it behind their back.
    assert await app.data[STACKS_SERVICE].drift.async_check(name) == []
    remote.commit({"stacks/life/compose.yaml": _with_volume(busybox_image, "v2")}, "A commit while stopped")
    await sync(app)
    assert _states(docker_client, project) == ["exited"]

    started = await _act(client, app, name, "start")
    assert started["status"] == "succeeded", started
    assert _states(docker_client, project) == ["running"]
    before = docker_client.containers.get(container_ids(docker_client, project)["app"]).attrs["State"]["StartedAt"]
    restarted = await _act(client, app, name, "restart")
    assert restarted["status"] == "succeeded", restarted
    after = docker_client.containers.get(container_ids(docker_client, project)["app"]).attrs["State"]["StartedAt"]
    assert after != before
    assert (work / "data" / "log").read_text().split() == ["v1", "v1", "v1"]  # each start appended a line

    down = await _act(client, app, name, "down")
    assert down["status"] == "succeeded", down
    assert _states(docker_client, project) == []
    assert docker_client.volumes.get(f"{project}_cache")  # never removed by Dockmaster
    assert (work / "data" / "log").exists()
    audit = await app.store.fetchall("SELECT action FROM audit WHERE target = ? ORDER BY id", (name,))
    assert [row["action"] for row in audit] == ["stack.stop", "stack.start", "stack.restart", "stack.down"]

    # A deploy by hand brings it back, at the newest commit.
    await app.data[STACKS_SERVICE].async_deploy(name=name, actor="admin", wait=True)
    assert _states(docker_client, project) == ["running"]
    assert (work / "data" / "log").read_text().split()[-1] == "v2"
    _remove_volume(docker_client, project, app)


async def test_the_ui_offers_lifecycle_buttons(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"lui-{suffix}"
    remote.commit({"stacks/lui/compose.yaml": data_compose(busybox_image, "v1")}, "Stack")
    client, app = await stacks_app([_stack(name, "lui")])
    token = await sign_in(client)
    listing = await (await client.get("/stacks")).text()
    page = await (await client.get(f"/stacks/{name}")).text()
    for action in ("stop", "restart", "down"):
        assert f'action="/stacks/{name}/{action}"' in listing
    for action in ("stop", "start", "restart", "down"):
        assert f'action="/stacks/{name}/{action}"' in page
    resp = await client.post(f"/stacks/{name}/stop", data={"csrf_token": token, "next": "list"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/stacks"
    await wait_idle(app)
    assert _states(docker_client, f"dm-{name}") == ["exited"]
    assert 'action="/stacks/' + name + '/start"' in await (await client.get("/stacks")).text()


async def test_a_stack_gone_from_git_is_orphaned_and_on_remove_down_takes_it_down(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    cleanup_projects: list[str],
) -> None:
    keep, drop, found = f"keep-{suffix}", f"drop-{suffix}", f"found-{suffix}"
    cleanup_projects.append(f"dm-{found}")  # discovered, and kept running as an orphan: the test removes it
    remote.commit({
        "stacks/keep/compose.yaml": data_compose(busybox_image, "k1"),
        "stacks/drop/compose.yaml": _with_volume(busybox_image, "d1"),
        f"auto/{found}/compose.yaml": data_compose(busybox_image, "f1"),
    }, "Three stacks")
    entries = [_stack(keep, "keep"), _stack(drop, "drop", on_remove="down"),
               {"discover": {"repo": "infra", "path": "auto/*", "health_timeout": "20s"}}]
    client, app = await stacks_app(entries)
    assert all(_states(docker_client, f"dm-{n}") == ["running"] for n in (keep, drop, found))

    remote.commit({"stacks/keep": None, "stacks/drop": None, f"auto/{found}": None}, "Remove the stacks")
    await sync(app)

    listing = {s["name"]: s for s in (await (await client.get("/api/v1/stacks", headers=bearer("read"))).json())[
        "stacks"]}
    assert listing[keep]["orphaned"] is True
    assert listing[keep]["orphan_reason"].startswith("its folder stacks/keep is gone from infra at")
    assert listing[found]["orphaned"] is True
    assert _states(docker_client, f"dm-{keep}") == ["running"]  # kept by default
    assert _states(docker_client, f"dm-{found}") == ["running"]
    assert _states(docker_client, f"dm-{drop}") == []  # on_remove: down
    assert listing[drop]["orphaned"] is True and listing[drop]["desired"] == "down"  # its data and volumes stay
    assert (app.data_dir / "stacks" / drop / "work" / "data" / "log").exists()
    assert docker_client.volumes.get(f"dm-{drop}_cache")
    _remove_volume(docker_client, f"dm-{drop}", app)
    down_run = (await app.runs.list(target=drop, limit=1))[0]
    assert down_run["kind"] == "down" and "on_remove: down" in down_run["reason"]

    # An orphan can still be taken down by name, by a person.
    assert (await _act(client, app, keep, "down"))["status"] == "succeeded"
    assert _states(docker_client, f"dm-{keep}") == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(f"dm-{keep}-app-1")

    # A stack that left the config is orphaned at the next start, and keeps running.
    await client.close()
    client, app = await stacks_app([_stack(keep, "keep")])
    listing = {s["name"]: s for s in (await (await client.get("/api/v1/stacks", headers=bearer("read"))).json())[
        "stacks"]}
    assert listing[found]["orphan_reason"] == "it is no longer in the config"
    assert _states(docker_client, f"dm-{found}") == ["running"]


async def test_cli_stops_and_starts_a_stack(
    remote: GitRemote, write_config: Any, busybox_image: str, docker_client: Any, suffix: str,
    cleanup_projects: list[str],
) -> None:
    name = f"clil-{suffix}"
    cleanup_projects.append(f"dm-{name}")
    remote.commit({"stacks/clil/compose.yaml": data_compose(busybox_image, "v1")}, "Stack")
    config = write_config({"repos": [{"name": "infra", "url": str(remote.bare)}],
                           "stacks": [_stack(name, "clil")]})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appliance.cli", *args, "-c", str(config)],
                              capture_output=True, text=True, timeout=120)

    assert (await asyncio.to_thread(cli, "deploy", name)).returncode == 0
    stop = await asyncio.to_thread(cli, "stop", name)
    assert stop.returncode == 0 and "stop by cli:" in stop.stdout, stop.stdout + stop.stderr
    assert _states(docker_client, f"dm-{name}") == ["exited"]
    start = await asyncio.to_thread(cli, "start", name)
    assert start.returncode == 0, start.stdout + start.stderr
    assert _states(docker_client, f"dm-{name}") == ["running"]
