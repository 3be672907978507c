"""SOPS secrets reach the container's environment and nowhere else; an unreadable SOPS file fails cleanly."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from addons.stacks.secrets import DIR_PREFIX, dir_prefix
from tests.conftest import bearer, sign_in
from tests.support.sops import age_key, encrypt_dotenv

from .conftest import GitRemote, StackApp, container_ids, httpd_compose, sync, wait_idle

pytestmark = pytest.mark.docker

def _shm_dirs() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob(f"{DIR_PREFIX}*")}


async def test_sops_marker_reaches_the_container_and_nowhere_else(
    tmp_path: Path, remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"sec-{suffix}"
    marker = f"dm-marker-{secrets.token_hex(12)}"
    key_file = tmp_path / "keys" / "age.txt"
    key_file.parent.mkdir()
    recipient = age_key(key_file)
    shm_before = _shm_dirs()
    env_block = "    environment:\n      MARKER: ${MARKER}\n"
    remote.commit({
        "stacks/sec/compose.yaml": httpd_compose(busybox_image, "sec-v1", extra_env=env_block),
        "stacks/sec/secrets.sops.env": encrypt_dotenv(tmp_path, recipient, f"MARKER={marker}\n"),
        ".sops.yaml": f"creation_rules:\n  - path_regex: .*\\.sops\\.env$\n    age: {recipient}\n",
    }, "Stack with a secret")
    client, app = await stacks_app([
        {"name": name, "repo": "infra", "path": "stacks/sec", "sops": "secrets.sops.env", "health_timeout": "20s"},
        {"settings": {"sops_age_key_file": str(key_file)}},
    ])
    web = docker_client.containers.get(container_ids(docker_client, f"dm-{name}")["web"])
    assert f"MARKER={marker}" in web.attrs["Config"]["Env"]

    # Every surface a person or a file could see: API answers, dry-run, run logs, UI pages.
    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={"dry_run": True}, headers=bearer("deploy"))
    assert resp.status == 202
    dry_id = (await resp.json())["run_id"]
    await wait_idle(app)
    seen: list[str] = []
    for path in ("/api/v1/stacks", f"/api/v1/stacks/{name}", "/api/v1/runs?limit=500", f"/api/v1/runs/{dry_id}"):
        seen.append(await (await client.get(path, headers=bearer("admin"))).text())
    for run in await app.runs.list(limit=500):
        seen.append(await (await client.get(f"/api/v1/runs/{run['id']}/log", headers=bearer("read"))).text())
    dry = await (await client.get(f"/api/v1/runs/{dry_id}", headers=bearer("read"))).json()
    assert dry["status"] == "succeeded", dry
    assert "MARKER: ***" in dry["details"]["compose_config"], dry["details"]["compose_config"]
    await sign_in(client)
    for path in ("/stacks", f"/stacks/{name}", f"/runs/{dry_id}", "/runs", "/"):
        seen.append(await (await client.get(path)).text())
    assert all(marker not in text for text in seen)

    await app.store.flush()
    for path in app.data_dir.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path
    assert {p.name for p in app.data_dir.iterdir()} >= {"dockmaster.db"}
    assert _shm_dirs() <= shm_before  # the decrypted folder is gone

    # A SOPS file the key cannot open: the run fails with the cause, the running stack is untouched.
    other = age_key(tmp_path / "keys" / "other.txt")
    before = container_ids(docker_client, f"dm-{name}")
    remote.commit({"stacks/sec/secrets.sops.env": encrypt_dotenv(tmp_path, other, f"MARKER={marker}-2\n")},
                  "Re-encrypt to a key Dockmaster lacks")
    await sync(app)
    last = (await app.runs.list(target=name, limit=1))[0]
    assert last["status"] == "failed"
    assert "cannot decrypt secrets.sops.env with the configured age key" in last["error"]
    assert container_ids(docker_client, f"dm-{name}") == before
    for path in app.data_dir.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path


async def test_start_removes_only_its_own_tmpfs_leftovers(stacks_app: StackApp, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    mine = shm / f"{dir_prefix(tmp_path / 'data')}{secrets.token_hex(8)}"  # left by this instance's crash
    other = shm / f"{DIR_PREFIX}{secrets.token_hex(8)}"  # in use by another instance on this machine
    mine.mkdir(mode=0o700)
    other.mkdir(mode=0o700)
    try:
        await stacks_app([{"name": f"idle-{secrets.token_hex(3)}", "repo": "infra", "path": "stacks/idle",
                           "auto_deploy": False}])
        assert not mine.exists()
        assert other.exists()
    finally:
        shutil.rmtree(mine, ignore_errors=True)
        shutil.rmtree(other, ignore_errors=True)
