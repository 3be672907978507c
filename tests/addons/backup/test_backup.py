"""Backups: online archive of db, config, secrets, keys and stack lists; API, schedule, CLI backup and restore."""

from __future__ import annotations

import io
import json
import re
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from addons.backup import archive
from appliance.auth import hash_password, hash_token
from appliance.cli import main
from appliance.http.app import create_app
from appliance.keys import APPLIANCE_KEY
from tests.conftest import ADMIN_PASSWORD, bearer

TOKEN = "dm_restore_me_token"


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _stack_folder(data_dir: Path) -> None:
    """A stack's working folder as the stacks addon leaves it: tracked files plus untouched ./data."""
    base = data_dir / "stacks" / "hello"
    (base / "work" / "data").mkdir(parents=True)
    (base / "work" / "compose.yaml").write_text("services: {}\n")
    (base / "work" / "data" / "big.bin").write_bytes(b"x" * 4096)
    (base / "tracked.json").write_text(json.dumps({"compose.yaml": "-:abc"}))


async def test_api_makes_lists_prunes_and_downloads(make_client: Any, tmp_path: Path) -> None:
    client = await make_client({"backup": {"keep": 2, "to": "archives"}},
                               secrets={"unused": "value"})
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "fleet").write_text("PRIVATE KEY")
    app = client.app[APPLIANCE_KEY]
    _stack_folder(app.data_dir)
    run = await app.runs.create("deploy", "hello", trigger="manual", reason="before the backup")
    await app.runs.finish(run, "succeeded")

    made = []
    for _ in range(3):
        resp = await client.post("/api/v1/backups", headers=bearer("admin"))
        assert resp.status == 201, await resp.text()
        made.append(await resp.json())
    listing = await (await client.get("/api/v1/backups", headers=bearer("admin"))).json()
    assert listing["dir"] == str(tmp_path / "archives") and listing["keep"] == 2
    assert [b["name"] for b in listing["backups"]] == [made[2]["backup"]["name"], made[1]["backup"]["name"]]
    assert made[2]["removed"] == [made[0]["backup"]["name"]]
    newest = tmp_path / "archives" / made[2]["backup"]["name"]
    assert stat.S_IMODE(newest.stat().st_mode) == 0o600

    resp = await client.get(listing["backups"][0]["download"], headers=bearer("admin"))
    assert resp.status == 200 and resp.headers["Content-Disposition"].startswith("attachment")
    members = {}
    with tarfile.open(fileobj=io.BytesIO(await resp.read()), mode="r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert {"manifest.json", "config/config.yaml", "config/secrets.yaml", "config/keys/fleet",
            "data/dockmaster.db", "stacks/hello.json"} <= set(members)
    assert not any("big.bin" in name or "archives/" in name for name in members)
    listing_of_stack = json.loads(members["stacks/hello.json"])
    assert listing_of_stack["tracked"] == {"compose.yaml": "-:abc"} and listing_of_stack["untracked"] == ["data/"]

    run_row = await app.runs.get(made[2]["run_id"])
    assert run_row["kind"] == "backup" and run_row["status"] == "succeeded" and run_row["trigger"] == "api"
    await app.store.flush()
    audit = await app.store.fetchall("SELECT actor, action FROM audit WHERE action LIKE 'backup%' ORDER BY id")
    assert [(r["actor"], r["action"]) for r in audit] == [("token:t-admin", "backup")] * 3 + [
        ("token:t-admin", "backup_download")]


async def test_only_admin_and_only_its_own_names(make_client: Any) -> None:
    client = await make_client({"backup": {}})
    for scope in ("read", "deploy"):
        assert (await client.get("/api/v1/backups", headers=bearer(scope))).status == 403
        assert (await client.post("/api/v1/backups", headers=bearer(scope))).status == 403
    for name in ("..%2Fconfig.yaml", "config.yaml", "dockmaster-test-20240101T000000Z.tar.gz"):
        resp = await client.get(f"/api/v1/backups/{name}", headers=bearer("admin"))
        assert resp.status == 404, name


async def test_the_schedule_is_registered_and_runs_as_a_scheduled_backup(make_client: Any, tmp_path: Path) -> None:
    client = await make_client({"backup": {"cron": "0 4 * * *", "keep": 3}})
    app = client.app[APPLIANCE_KEY]
    assert app.scheduler.jobs["backup"].cron == "0 4 * * *"
    await app.scheduler.jobs["backup"].factory()
    [backup] = archive.list_backups(tmp_path / "backups")
    runs = await app.runs.list(kind="backup")
    assert runs[0]["trigger"] == "schedule" and runs[0]["status"] == "succeeded"
    assert backup.name.startswith("dockmaster-test-")


CONFIG = """\
# restored with its comments
dockmaster:
  name: lab
http:
  host: 127.0.0.1
auth:
  users:
    - username: admin
      password_hash: !secret admin_password_hash
  tokens:
    - name: ha
      token_hash: !secret ha_token_hash
      scopes: [admin]
backup:
  keep: 3
"""


@pytest.fixture(scope="module")
def secrets_text() -> str:
    return yaml.safe_dump({"admin_password_hash": hash_password(ADMIN_PASSWORD), "ha_token_hash": hash_token(TOKEN)})


async def test_backup_then_restore_brings_back_runs_audit_users_and_tokens(
        tmp_path: Path, aiohttp_client: Any, secrets_text: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text(CONFIG)
    (old / "secrets.yaml").write_text(secrets_text)
    client = await aiohttp_client(await create_app(old / "config.yaml"))
    app = client.app[APPLIANCE_KEY]
    run = await app.runs.create("deploy", "traefik", trigger="webhook", reason="push to main")
    await app.runs.finish(run, "succeeded")
    app.store.audit("user:admin", "deploy", "traefik", source="192.0.2.7")
    await app.store.flush()
    # The daemon is still running: the backup is taken online, beside it.
    assert main(["backup", "-c", str(old / "config.yaml"), "--to", str(tmp_path / "out")]) == 0
    archive_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    await client.close()

    new = tmp_path / "new"
    assert main(["restore", str(archive_path), "-c", str(new / "config.yaml")]) == 0
    assert (new / "config.yaml").read_text() == CONFIG
    assert stat.S_IMODE((new / "secrets.yaml").stat().st_mode) == 0o600
    restored = await aiohttp_client(await create_app(new / "config.yaml"))
    rows = await (await restored.get("/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})).json()
    assert [(r["kind"], r["target"], r["status"]) for r in rows["runs"]] == [("deploy", "traefik", "succeeded")]
    audit = await (await restored.get("/api/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"})).json()
    assert ("user:admin", "deploy", "traefik") in [(a["actor"], a["action"], a["target"]) for a in audit["audit"]]
    resp = await restored.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD},
                               allow_redirects=False)
    assert resp.status == 303

    # A second restore onto the same folder is refused and changes nothing.
    assert main(["restore", str(archive_path), "-c", str(new / "config.yaml")]) == 1
    assert "already holds a configuration" in capsys.readouterr().err


def test_restore_refuses_unsafe_or_foreign_archives(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, data in (("manifest.json", json.dumps({"format": 1, "config_file": "config.yaml"}).encode()),
                           ("config/../../escape", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(archive.RestoreRefused, match="unsafe path"):
        archive.restore_backup(bad, tmp_path / "target" / "config.yaml", lambda p: tmp_path / "data")
    assert not (tmp_path / "escape").exists()
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        tar.add(bad, "whatever")
    with pytest.raises(archive.RestoreRefused, match="not a Dockmaster backup"):
        archive.restore_backup(foreign, tmp_path / "t2" / "config.yaml", lambda p: tmp_path / "data")


def test_archive_names_sort_and_never_collide(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("dockmaster: {name: x}\n")
    first = archive.make_backup(config, tmp_path / ".dockmaster", tmp_path / "b", name="My Lab")
    second = archive.make_backup(config, tmp_path / ".dockmaster", tmp_path / "b", name="My Lab")
    assert re.match(r"dockmaster-my-lab-\d{8}T\d{6}Z(-2)?\.tar\.gz$", first.name)
    assert first.name != second.name and len(archive.list_backups(tmp_path / "b")) == 2
    assert "config/config.yaml" in _members(tmp_path / "b" / first.name)
