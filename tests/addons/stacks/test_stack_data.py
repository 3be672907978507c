"""A stack's `./data` lives in its stable working folder: it survives redeploys, rollbacks, restarts and failures."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from addons.stacks.workdir import MANIFEST, TRACKED
from tests.support.sops import age_key, encrypt_dotenv

from .conftest import GitRemote, StackApp, container_ids, sync

pytestmark = pytest.mark.docker


def data_compose(image: str, content: str, *, extra: str = "") -> str:
    """A service that appends `content` to ./data/log at every start and stays healthy while it runs."""
    return f"""services:
  app:
    image: {image}
    command: ["sh", "-c", "echo {content} >> /data/log; trap 'exit 0' TERM; sleep 3600 & wait"]
    volumes: ["./data:/data"]
    stop_grace_period: 1s
{extra}    healthcheck:
      test: ["CMD", "test", "-s", "/data/log"]
      interval: 300ms
      timeout: 2s
      retries: 3
      start_period: 0s
"""


def _stack(name: str, folder: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "repo": "infra", "path": f"stacks/{folder}", "health_timeout": "20s", **extra}


def _bind_source(docker_client: Any, project: str) -> str:
    container = docker_client.containers.get(container_ids(docker_client, project)["app"])
    return next(m["Source"] for m in container.attrs["Mounts"] if m["Destination"] == "/data")


async def _last_run(app: Any, name: str) -> dict[str, Any]:
    run: dict[str, Any] = (await app.runs.list(target=name, limit=1))[0]
    return run


async def test_data_survives_ten_redeploys_a_rollback_and_a_restart(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"data-{suffix}"
    project = f"dm-{name}"
    entries = [_stack(name, "data"), {"settings": {"keep_snapshots": 2}}]
    remote.commit({"stacks/data/compose.yaml": data_compose(busybox_image, "v0")}, "Stack with data")
    client, app = await stacks_app(entries)
    work = app.data_dir / "stacks" / name / "work"
    assert _bind_source(docker_client, project) == str(work / "data")

    for i in range(1, 11):
        remote.commit({"stacks/data/compose.yaml": data_compose(busybox_image, f"v{i}")}, f"Version {i}")
        await sync(app)
        assert (await _last_run(app, name))["status"] == "succeeded"
        assert _bind_source(docker_client, project) == str(work / "data")
    snapshots = list((app.data_dir / "stacks" / name / "snapshots").iterdir())
    assert len(snapshots) <= 3  # keep_snapshots plus the running one: pruning ran, and the data stayed
    assert all(not (s / "data").exists() for s in snapshots)  # snapshots hold tracked files only

    run_id = await app.data[STACKS_SERVICE].async_rollback(name=name, actor="admin", wait=True)
    assert (await app.runs.get(run_id))["status"] == "succeeded"
    assert _bind_source(docker_client, project) == str(work / "data")

    await client.close()
    _, app = await stacks_app(entries)
    remote.commit({"stacks/data/compose.yaml": data_compose(busybox_image, "v11")}, "After a restart")
    await sync(app)
    assert (await _last_run(app, name))["status"] == "succeeded"
    assert _bind_source(docker_client, project) == str(work / "data")

    lines = (work / "data" / "log").read_text().split()
    assert lines == [f"v{i}" for i in range(11)] + ["v9", "v11"]


async def test_tracked_files_follow_git_and_a_failed_deploy_leaves_the_folder_as_it_runs(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"track-{suffix}"
    project = f"dm-{name}"
    remote.commit({"stacks/track/compose.yaml": data_compose(busybox_image, "v1"),
                   "stacks/track/conf/app.ini": "a=1\n"}, "Stack with a config file")
    _, app = await stacks_app([_stack(name, "track")])
    work = app.data_dir / "stacks" / name / "work"
    assert (work / "conf" / "app.ini").read_text() == "a=1\n"

    # A file removed from git is removed from the working folder (and its emptied folder with it).
    remote.commit({"stacks/track/compose.yaml": data_compose(busybox_image, "v2"),
                   "stacks/track/conf/app.ini": None}, "Drop the config file")
    await sync(app)
    assert (await _last_run(app, name))["status"] == "succeeded"
    assert not (work / "conf").exists()
    running = container_ids(docker_client, project)
    compose_v2 = (work / "compose.yaml").read_text()

    # A tracked file would replace one the container wrote: the run names it and touches nothing.
    (work / "data" / "extra.ini").write_text("written by the app\n")
    remote.commit({"stacks/track/compose.yaml": data_compose(busybox_image, "v3"),
                   "stacks/track/data/extra.ini": "from git\n"}, "Track a file where data lives")
    await sync(app)
    failed = await _last_run(app, name)
    assert failed["status"] == "failed"
    assert "data/extra.ini exists and is not tracked" in failed["error"], failed["error"]
    assert (work / "data" / "extra.ini").read_text() == "written by the app\n"
    assert (work / "compose.yaml").read_text() == compose_v2
    assert container_ids(docker_client, project) == running

    # compose rejects the next revision after its files were written: they are put back.
    remote.commit({"stacks/track/compose.yaml": "services:\n  app:\n    image: [not, a, string]\n",
                   "stacks/track/data/extra.ini": None}, "Broken compose file")
    await sync(app)
    failed = await _last_run(app, name)
    assert failed["status"] == "failed" and "compose config rejected" in failed["error"]
    assert (work / "compose.yaml").read_text() == compose_v2
    assert container_ids(docker_client, project) == running
    assert (work / "data" / "log").read_text().split() == ["v1", "v2"]


async def test_env_file_naming_the_sops_file_gets_the_plaintext(
    tmp_path: Path, remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    key_file = tmp_path / "keys" / "age.txt"
    key_file.parent.mkdir()
    recipient = age_key(key_file)
    encrypted = encrypt_dotenv(tmp_path, recipient, "DB_PASSWORD=plain-value-42\n")
    listed, unlisted = f"envf-{suffix}", f"enc-{suffix}"
    remote.commit({
        "stacks/envf/compose.yaml": data_compose(busybox_image, "v1", extra="    env_file: [app.sops.env]\n"),
        "stacks/envf/app.sops.env": encrypted,
        "stacks/enc/compose.yaml": data_compose(busybox_image, "v1", extra="    env_file: [app.env]\n"),
        "stacks/enc/app.env": encrypted,
    }, "Stacks reading a SOPS file through env_file")
    _, app = await stacks_app([
        _stack(listed, "envf", sops="app.sops.env"), _stack(unlisted, "enc"),
        {"settings": {"sops_age_key_file": str(key_file)}},
    ])

    container = docker_client.containers.get(container_ids(docker_client, f"dm-{listed}")["app"])
    env = container.attrs["Config"]["Env"]
    assert "DB_PASSWORD=plain-value-42" in env
    assert not any("ENC[" in item for item in env)
    override = app.data_dir / "stacks" / listed / "work" / ".dockmaster.override.yaml"
    assert "plain-value-42" not in override.read_text()  # only the tmpfs path is written

    failed = await _last_run(app, unlisted)
    assert failed["status"] == "failed"
    assert "service app: env_file app.env is SOPS-encrypted; list it under the stack's 'sops:'" in failed["error"]
    assert container_ids(docker_client, f"dm-{unlisted}") == {}


async def test_an_install_from_before_working_folders_keeps_its_data(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"legacy-{suffix}"
    project = f"dm-{name}"
    remote.commit({"stacks/legacy/compose.yaml": data_compose(busybox_image, "v1"),
                   "stacks/legacy/conf/app.ini": "a=1\n"}, "Stack")
    client, app = await stacks_app([_stack(name, "legacy")])
    base = app.data_dir / "stacks" / name
    state = app.data[STACKS_SERVICE].engine.states.get(name)
    snapshot = Path(state.snapshot)
    await client.close()

    # Lay the folders out as the previous release did: the snapshot was compose's project folder.
    (snapshot / MANIFEST).unlink()
    shutil.move(base / "work" / "data", snapshot / "data")
    (snapshot / "conf" / "cache.db").write_text("app cache\n")
    shutil.rmtree(base / "work")
    (base / TRACKED).unlink()

    _, app = await stacks_app([_stack(name, "legacy")])
    remote.commit({"stacks/legacy/compose.yaml": data_compose(busybox_image, "v2")}, "First deploy after upgrade")
    await sync(app)
    run = await _last_run(app, name)
    assert run["status"] == "succeeded"
    log = (await app.runs.get(run["id"]))["log"]
    assert "moved 2 untracked item(s) of the running deploy (conf/cache.db, data)" in log, log
    work = base / "work"
    assert (work / "data" / "log").read_text().split() == ["v1", "v2"]
    assert (work / "conf" / "cache.db").read_text() == "app cache\n"
    assert _bind_source(docker_client, project) == str(work / "data")
    assert (work / "conf" / "app.ini").read_text() == "a=1\n"
