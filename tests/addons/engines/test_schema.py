"""The `engines:` config block: every problem located with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config import check_config

TLS = {"ca": "/config/tls/ca.pem", "cert": "/config/tls/cert.pem", "key": "/config/tls/key.pem"}


def _issues(tmp_path: Path, engines: Any) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"engines": engines}, sort_keys=False))
    return [str(issue) for issue in check_config(path).issues]


@pytest.mark.parametrize(
    ("engines", "message"),
    [
        ([{"name": "local", "url": "ssh://me@nas"}],
         "engines[0].name: 'local' is the engine Dockmaster runs beside; it needs no entry"),
        ([{"name": "nas"}], "engines[0]: an engine needs `url` (ssh:// or tcp://) or `host` (a name from hosts:)"),
        ([{"name": "nas", "url": "http://nas:2375"}],
         "engines[0].url: engine url must start with ssh:// or tcp://, got 'http://nas:2375'"),
        ([{"name": "nas", "url": "tcp://nas:2376"}],
         "engines[0].tls: a tcp:// engine needs `tls: {ca, cert, key}`: Dockmaster never drives an engine over "
         "plain TCP"),
        ([{"name": "nas", "url": "tcp://nas"}],
         "engines[0].url: a tcp:// engine url needs a port (2376 for TLS): 'tcp://nas'"),
        ([{"name": "nas", "url": "ssh://me:pw@nas"}],
         "engines[0].url: engine url must not hold a password; use ssh_key"),
        ([{"name": "nas", "url": "ssh://me@nas", "tls": TLS}],
         "engines[0].tls: `tls` is for tcp:// engines; an SSH engine is reached through its socket"),
        ([{"name": "nas", "url": "ssh://me@nas", "socket": "run/docker.sock"}],
         "engines[0].socket: must be an absolute path on the engine's host, got 'run/docker.sock'"),
        ([{"name": "nas", "url": "ssh://me@nas", "host": "vm"}],
         "engines[0].host: give `url` or `host`, not both"),
        ([{"name": "nas", "url": "ssh://me@nas"}, {"name": "nas", "url": "ssh://me@nas2"}],
         "engines[1].name: duplicate name 'nas'"),
    ],
)
def test_config_errors_are_located(tmp_path: Path, engines: Any, message: str) -> None:
    issues = _issues(tmp_path, engines)
    assert any(issue.startswith(message + " (config.yaml, line ") for issue in issues), issues


def test_valid_engines_get_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"engines": [{"name": "nas", "url": "ssh://me@nas:2222"},
                                                {"name": "media", "url": "tcp://media:2376", "tls": TLS}]}))
    result = check_config(path)
    assert result.ok, result.issues
    nas, media = result.domains["engines"]
    assert nas["socket"] == "/var/run/docker.sock" and nas["check_interval"].total_seconds() == 30
    assert media["tls"]["ca"] == Path("/config/tls/ca.pem")
