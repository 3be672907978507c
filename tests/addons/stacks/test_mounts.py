"""The mount plan: bind sources under the data dir rewritten for the Docker host, SOPS env files read from tmpfs."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.stacks.mounts import MountError, plan, write_override
from appliance.hostpaths import HostPaths


def _model(work: Path) -> dict[str, object]:
    return {"services": {
        "app": {"volumes": [
            {"type": "bind", "source": str(work / "data"), "target": "/data", "bind": {"create_host_path": True}},
            {"type": "bind", "source": "/mnt/user/media", "target": "/media", "read_only": True},
            {"type": "volume", "source": "cache", "target": "/cache"},
        ]},
        "db": {"image": "x"},
    }}


def test_binds_under_the_data_dir_are_rewritten_in_the_override(tmp_path: Path) -> None:
    work = Path("/config/.dockmaster/stacks/app/work")
    paths = HostPaths(Path("/config/.dockmaster"), Path("/mnt/appdata/dm/.dockmaster"), "mount")
    result = plan(_model(work), root=work, host=paths, decrypted={})
    volumes = result.services["app"]["volumes"]
    assert volumes[0]["source"] == "/mnt/appdata/dm/.dockmaster/stacks/app/work/data"
    assert volumes[1]["source"] == "/mnt/user/media" and volumes[2]["source"] == "cache"
    assert "db" not in result.services
    assert result.notes == ["service app: bind /data uses /mnt/appdata/dm/.dockmaster/stacks/app/work/data on the "
                            "Docker host"]
    override = tmp_path / ".dockmaster.override.yaml"
    write_override(override, result)
    text = override.read_text()
    assert "volumes: !override" in text and "/mnt/appdata/dm/.dockmaster/stacks/app/work/data" in text


def test_a_bind_the_host_cannot_reach_fails_with_its_source() -> None:
    work = Path("/config/.dockmaster/stacks/app/work")
    paths = HostPaths(Path("/config/.dockmaster"), None, "the data dir is inside Dockmaster's container")
    with pytest.raises(MountError) as err:
        plan(_model(work), root=work, host=paths, decrypted={})
    assert str(err.value) == (f"service app: bind source {work / 'data'} would not exist on the Docker host "
                              "(the data dir is inside Dockmaster's container)")


def test_env_files_of_sops_files_read_the_decrypted_copy(tmp_path: Path) -> None:
    (tmp_path / "plain.env").write_text("A=1\n")
    (tmp_path / "enc.env").write_text("A=ENC[AES256_GCM,data:xx,type:str]\nsops_version=3.9.0\n")
    model = {"services": {"app": {}, "other": {}, "vars": {}}}
    env_files = {
        "app": [{"path": str(tmp_path / "app.sops.env"), "required": True}, str(tmp_path / "plain.env")],
        "other": [{"path": str(tmp_path / "enc.env"), "required": True}],
        "vars": [{"path": "${CONF_DIR}/x.env", "required": True}],
    }
    host = HostPaths(tmp_path, tmp_path, "host")
    with pytest.raises(MountError) as err:
        plan(model, root=tmp_path, host=host, decrypted={"app.sops.env": Path("/dev/shm/dm-x/app.env")},
             env_files=env_files)
    assert str(err.value).startswith("service other: env_file enc.env is SOPS-encrypted; list it under the stack's "
                                     "'sops:'")
    del env_files["other"]
    result = plan(model, root=tmp_path, host=host, decrypted={"app.sops.env": Path("/dev/shm/dm-x/app.env")},
                  env_files=env_files)
    assert result.services == {"app": {"env_file": [{"path": "/dev/shm/dm-x/app.env", "required": True},
                                                    {"path": str(tmp_path / "plain.env"), "required": True}]}}
