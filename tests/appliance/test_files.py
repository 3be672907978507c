"""Files: Dockmaster's own are private (umask 077); check-config warns about readable secrets and keys."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
from pathlib import Path

from appliance.config import readable_secret_files
from tests.support.daemon import DOCKMASTER, free_port, start


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_daemon_writes_private_files_and_shows_the_bootstrap_token_once(tmp_path: Path, write_config) -> None:
    config = write_config(users=False, tokens=False)
    log = tmp_path / "run.log"
    proc = start(config, free_port(), log)
    try:
        data = tmp_path / "data"
        assert _mode(data / "dockmaster.db") == 0o600
        assert _mode(data) == 0o700
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    output = log.read_text()
    tokens = re.findall(r"bootstrap token\s+(\S{20,})\s", output)
    assert len(tokens) == 1, output
    assert output.count(tokens[0]) == 1  # on the console once, in no log line


def test_check_config_warns_about_secrets_readable_by_others(tmp_path: Path, write_config) -> None:
    config = write_config(secrets={"unused": "value"})
    secrets = tmp_path / "secrets.yaml"
    secrets.chmod(0o644)
    out = subprocess.run([DOCKMASTER, "check-config", "-c", str(config)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert f"warning: {secrets} is readable by group or others (mode 644); run: chmod 600 {secrets}" in out.stderr
    secrets.chmod(0o600)
    out = subprocess.run([DOCKMASTER, "check-config", "-c", str(config)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0 and "warning" not in out.stderr


def test_key_files_readable_by_others_are_named_with_their_config_path(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    key = tmp_path / "keys" / "fleet"
    key.parent.mkdir()
    key.write_text("private")
    key.chmod(0o640)
    domains = {"hosts": [{"name": "vm", "ssh_key": "keys/fleet"}], "repos": [{"ssh_key": "generate"}]}
    [warning] = readable_secret_files(config, tmp_path / "secrets.yaml", domains)
    assert warning.path == "hosts[0].ssh_key" and "mode 640" in warning.message
    key.chmod(0o600)
    assert readable_secret_files(config, tmp_path / "secrets.yaml", domains) == []
