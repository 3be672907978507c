"""Config edits keep the user's comments and layout, write secrets.yaml privately, and validate afterwards."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance.auth import hash_password, hash_token
from appliance.config import check_config
from appliance.config_writer import ConfigWriter
from appliance.errors import Conflict

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"

STARTER = """\
# Dockmaster starter config: see docs/configuration.md for every key.
dockmaster:
  name: dockmaster   # shown in the title bar
  data_dir: {data}
  time_zone: !env_var TZ UTC
http:
  host: 127.0.0.1
  port: 8099
# No user yet: sign in once with the bootstrap token printed in the log.
"""


@pytest.fixture(scope="module")
def a_hash() -> str:
    return hash_password("a long enough password")


def test_user_and_token_are_added_and_every_original_line_stays(tmp_path: Path, a_hash: str) -> None:
    config = tmp_path / "config.yaml"
    original = STARTER.format(data=tmp_path / "data")
    config.write_text(original)
    writer = ConfigWriter(config)
    assert writer.add_user("admin", a_hash) == "admin_password_hash"
    assert writer.add_token("home-assistant", hash_token("dm_x"), ["deploy"]) == "home-assistant_token_hash"
    text = config.read_text()
    assert text.startswith(original), text  # comments, the !env_var tag and the layout are untouched
    assert text[len(original):] == (
        "auth:\n"
        "  users:\n"
        "    - username: admin\n"
        "      password_hash: !secret admin_password_hash\n"
        "  tokens:\n"
        "    - name: home-assistant\n"
        "      token_hash: !secret home-assistant_token_hash\n"
        "      scopes: [deploy]\n"
    )
    secrets = tmp_path / "secrets.yaml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    checked = check_config(config)
    assert checked.ok, [str(i) for i in checked.issues]
    assert [u["username"] for u in checked.domains["auth"]["users"]] == ["admin"]
    assert str(checked.domains["auth"]["users"][0]["password_hash"]) == a_hash
    assert checked.domains["auth"]["tokens"][0]["scopes"] == ["deploy"]


def test_the_example_config_changes_only_where_the_user_goes(tmp_path: Path, a_hash: str) -> None:
    config = tmp_path / "config.yaml"
    original = EXAMPLE.read_text()
    config.write_text(original)
    (tmp_path / "secrets.yaml").write_text("# my secrets\nother: keep-me\n")
    ConfigWriter(config).add_user("admin", a_hash)
    before, after = original.splitlines(), config.read_text().splitlines()
    removed = [line for line in before if line not in after]
    added = [line for line in after if line not in before]
    assert removed == ["  users: []"]
    assert added == ["  users:", "    - username: admin", "      password_hash: !secret admin_password_hash"]
    assert (tmp_path / "secrets.yaml").read_text() == f"# my secrets\nother: keep-me\nadmin_password_hash: {a_hash}\n"


def test_secret_names_do_not_clash_and_duplicates_are_refused(tmp_path: Path, a_hash: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("auth:\n- not a mapping\n")
    with pytest.raises(Conflict, match="not a plain mapping"):
        ConfigWriter(config).add_user("admin", a_hash)
    config.write_text("dockmaster: {name: x}\n")
    (tmp_path / "secrets.yaml").write_text("admin_password_hash: taken\n")
    writer = ConfigWriter(config)
    assert writer.add_user("admin", a_hash) == "admin_password_hash_2"
    with pytest.raises(Conflict, match="already has an entry named 'admin'"):
        writer.add_user("admin", a_hash)


def test_snapshot_and_restore_put_both_files_back(tmp_path: Path, a_hash: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("# mine\ndockmaster: {name: x}\n")
    writer = ConfigWriter(config)
    saved = writer.snapshot()
    writer.add_user("admin", a_hash)
    writer.restore(saved)
    assert config.read_text() == "# mine\ndockmaster: {name: x}\n"
    assert not (tmp_path / "secrets.yaml").exists()
