"""The deploy engine on the real Docker engine with real git repos: change scope, rollback, coalescing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE

from .conftest import GitRemote, StackApp, container_ids, httpd_compose, served, sync, wait_idle

pytestmark = pytest.mark.docker


def _stack(name: str, folder: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "repo": "infra", "path": f"stacks/{folder}", "health_timeout": "20s", **extra}


async def _runs(app: Any, name: str) -> list[dict[str, Any]]:
    return list(reversed(await app.runs.list(target=name, limit=50)))


async def test_commit_touching_one_stack_recreates_only_its_containers(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    names = {f: f"{f}-{suffix}" for f in ("alpha", "beta", "gamma")}
    remote.commit({f"stacks/{f}/compose.yaml": httpd_compose(busybox_image, f"{f}-v1") for f in names},
                  "Three stacks")
    _, app = await stacks_app([_stack(n, f) for f, n in names.items()])
    before = {f: container_ids(docker_client, f"dm-{n}") for f, n in names.items()}
    assert all(before.values()), before
    compose_calls = app.data[STACKS_SERVICE].engine.compose.stats.calls

    sha = remote.commit({"stacks/beta/compose.yaml": httpd_compose(busybox_image, "beta-v2")}, "Update beta")
    await sync(app)

    after = {f: container_ids(docker_client, f"dm-{n}") for f, n in names.items()}
    assert after["alpha"] == before["alpha"]
    assert after["gamma"] == before["gamma"]
    assert after["beta"]["web"] != before["beta"]["web"]
    assert served(docker_client, f"dm-{names['beta']}") == "beta-v2"
    # Only beta ran compose (config + up): the untouched stacks cost nothing.
    assert app.data[STACKS_SERVICE].engine.compose.stats.calls - compose_calls == 2
    beta_runs = await _runs(app, names["beta"])
    assert beta_runs[-1]["status"] == "succeeded"
    assert beta_runs[-1]["reason"] == f"commit {sha[:7]} changed stacks/beta/compose.yaml"
    labels = docker_client.containers.get(after["beta"]["web"]).labels
    assert labels["io.dockmaster.managed"] == "true"
    assert labels["io.dockmaster.stack"] == names["beta"]
    assert labels["io.dockmaster.revision"] == sha
    for name in (names["alpha"], names["gamma"]):
        assert [r["kind"] for r in await _runs(app, name)] == ["deploy"]  # the first deploy only


async def test_unhealthy_commit_is_rolled_back_and_not_retried(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"web-{suffix}"
    good = remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "good-v1")}, "Good web")
    _, app = await stacks_app([_stack(name, "web", health_timeout="15s")])
    assert served(docker_client, f"dm-{name}") == "good-v1"

    bad = remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "bad-v2", healthy=False)},
                        "Break the healthcheck")
    await sync(app)

    assert served(docker_client, f"dm-{name}") == "good-v1"
    runs = await _runs(app, name)
    deploy, rollback = runs[-2], runs[-1]
    assert deploy["kind"] == "deploy" and deploy["status"] == "failed"
    assert deploy["reason"] == f"commit {bad[:7]} changed stacks/web/compose.yaml"
    assert "service web is unhealthy" in deploy["error"]
    assert rollback["kind"] == "rollback" and rollback["status"] == "succeeded"
    assert rollback["reason"].startswith(f"deploy of {bad[:7]} failed (service web is unhealthy")
    assert f"restoring last good revision {good[:7]}" in rollback["reason"]
    state = app.data[STACKS_SERVICE].engine.states.get(name)
    assert state.deployed_revision == good and bad in state.bad
    events = {row["type"] for row in await app.store.fetchall("SELECT type FROM events")}
    assert {"deploy_failed", "rollback_succeeded", "deploy_started", "deploy_succeeded"} <= events

    # An unrelated commit carries the same bad stack content: it is not retried.
    remote.commit({"README.md": "unrelated\n"}, "Docs only")
    await sync(app)
    assert len(await _runs(app, name)) == len(runs)
    # A fix is deployed.
    fixed = remote.commit({"stacks/web/compose.yaml": httpd_compose(busybox_image, "fixed-v3")}, "Fix web")
    await sync(app)
    assert served(docker_client, f"dm-{name}") == "fixed-v3"
    assert app.data[STACKS_SERVICE].engine.states.get(name).deployed_revision == fixed


async def test_ten_triggers_during_a_deploy_make_two_deploys(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"co-{suffix}"
    remote.commit({"stacks/co/compose.yaml": httpd_compose(busybox_image, "c0")}, "c0")
    _, app = await stacks_app([_stack(name, "co")])
    first = len(await _runs(app, name))
    repos = app.data[REPOS_MANAGER]
    shas = []
    for index in range(1, 11):
        shas.append(remote.commit({"stacks/co/compose.yaml": httpd_compose(busybox_image, f"c{index}")},
                                  f"c{index}"))
        await repos.async_sync("infra", trigger="webhook", reason=f"push {index}", actor="github:alice")
    await wait_idle(app)
    runs = (await _runs(app, name))[first:]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"], runs
    assert runs[-1]["details"]["revision"] == shas[-1]
    # The deploys say what started them: the webhook syncs, and who pushed.
    assert [(r["trigger"], r["actor"]) for r in runs] == [("webhook", "github:alice")] * 2
    assert served(docker_client, f"dm-{name}") == "c10"


async def test_unreachable_remote_leaves_stacks_untouched(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"off-{suffix}"
    remote.commit({"stacks/off/compose.yaml": httpd_compose(busybox_image, "v1")}, "v1")
    _, app = await stacks_app([_stack(name, "off")])
    before = container_ids(docker_client, f"dm-{name}")
    remote.commit({"stacks/off/compose.yaml": httpd_compose(busybox_image, "v2")}, "v2")
    remote.bare.rename(remote.bare.with_name("moved.git"))
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="poll")
    await wait_idle(app)
    assert result.error
    sync_run = await app.runs.get(result.run_id)
    assert sync_run is not None and sync_run["status"] == "failed" and sync_run["error"]
    assert container_ids(docker_client, f"dm-{name}") == before
    assert [r["kind"] for r in await _runs(app, name)] == ["deploy"]
    assert served(docker_client, f"dm-{name}") == "v1"


async def test_drift_seen_while_a_deploy_starts_is_not_healed(
    remote: GitRemote, stacks_app: StackApp, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"dr-{suffix}"
    _, app = await stacks_app([_stack(name, "dr", auto_deploy=False)])
    engine = app.data[STACKS_SERVICE].engine
    state = engine.states.get(name)
    state.deployed_revision, state.project, state.config_hashes = "a" * 40, f"dm-{name}", {"web": "x"}
    state.health = "healthy"
    await engine.async_set_auto_deploy(name, True)
    listing = threading.Event()

    def slow_listing(client: Any, project: str) -> list[Any]:
        listing.wait(10)
        return []  # the deploy removed the old container meanwhile

    monkeypatch.setattr("addons.stacks.drift.list_project", slow_listing)
    check = asyncio.create_task(app.data[STACKS_SERVICE].drift.async_check(name))
    await asyncio.sleep(0.1)
    deploying = asyncio.Event()
    app.scheduler.submit(f"stack:{name}", deploying.wait)  # a deploy starts while drift lists containers
    listing.set()
    try:
        assert await check == []
        assert name not in engine._pending  # no "healing" deploy of the old revision queued behind it
    finally:
        deploying.set()


async def test_rollback_cut_short_by_a_crash_runs_at_the_next_start(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"rs-{suffix}"
    good = remote.commit({"stacks/rs/compose.yaml": httpd_compose(busybox_image, "good-v1")}, "Good")
    client, app = await stacks_app([_stack(name, "rs")])
    bad = remote.commit({"stacks/rs/compose.yaml": httpd_compose(busybox_image, "bad-v2", healthy=False)}, "Bad")
    # What a kill -9 between a failed deploy and its rollback leaves: the bad revision recorded as
    # running and unhealthy, and marked bad (so no automatic deploy would ever touch it again).
    engine = app.data[STACKS_SERVICE].engine
    state = engine.states.get(name)
    await engine.states.async_mark_bad(state, bad, inputs_hash=None, run_id=None, error="unhealthy")
    state.deployed_revision, state.health = bad, "unhealthy"
    await engine.states.async_save(state)
    await client.close()

    _, app = await stacks_app([_stack(name, "rs")])

    last = (await _runs(app, name))[-1]
    assert (last["kind"], last["status"], last["trigger"]) == ("rollback", "succeeded", "startup"), last
    assert f"restoring last good revision {good[:7]}" in last["reason"]
    state = app.data[STACKS_SERVICE].engine.states.get(name)
    assert (state.deployed_revision, state.health) == (good, "healthy")
    assert served(docker_client, f"dm-{name}") == "good-v1"


class _Window:
    """A window the test opens and closes by hand."""

    def __init__(self) -> None:
        self.open = True
        self.opened = asyncio.Event()

    def is_open(self, now: Any = None) -> bool:
        return self.open

    def describe(self, now: Any = None) -> str:
        return "opens when the test says so"

    async def async_wait_open(self, *, poll: float = 30.0) -> None:
        await self.opened.wait()


async def test_deploy_waiting_for_a_slot_never_starts_after_its_window_closed(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"win-{suffix}"
    remote.commit({"stacks/win/compose.yaml": httpd_compose(busybox_image, "w1")}, "w1")
    window = _Window()
    stacks = [_stack(name, "win", window="nightly", auto_deploy=False), {"settings": {"max_parallel": 1}}]
    _, app = await stacks_app(stacks, windows={"nightly": {"cron": "0 2 * * *", "duration": "1h"}})
    app.windows["nightly"] = window
    engine = app.data[STACKS_SERVICE].engine
    calls = engine.compose.stats.calls

    async with engine._parallel:  # the only slot is busy with another stack's deploy
        run_id = await app.data[STACKS_SERVICE].async_deploy(name=name, actor="tester")
        await asyncio.sleep(0.2)
        window.open = False  # the window closes meanwhile
    await asyncio.sleep(0.3)

    run = app.runs.active[run_id]
    assert run.status == "queued" and "(waiting for window nightly" in run.reason
    assert engine.compose.stats.calls == calls  # nothing ran
    window.open = True
    window.opened.set()
    await wait_idle(app)
    assert (await app.runs.get(run_id) or {})["status"] == "succeeded"
    assert (await app.runs.get(run_id) or {})["reason"] == "manual deploy by tester"
