"""`!env_var` values read from the environment are redacted like `!secret` values; defaults are not secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.keys import APPLIANCE_KEY
from appliance.yaml import Secret, load_config_yaml


def test_env_var_values_are_secrets_and_defaults_are_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_TEST_TOKEN", "tok-from-env")
    monkeypatch.delenv("DM_TEST_UNSET", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text("a: !env_var DM_TEST_TOKEN\nb: !env_var DM_TEST_UNSET written-default\n")
    data, issues = load_config_yaml(path)
    assert issues == []
    assert isinstance(data["a"], Secret) and repr(data["a"]) == "<secret env:DM_TEST_TOKEN>"
    assert not isinstance(data["b"], Secret) and data["b"] == "written-default"


async def test_env_var_value_is_redacted_in_what_the_app_shows(make_client: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    marker = "json://127.0.0.1:9/dm-env-marker-7f3a9c"
    monkeypatch.setenv("DM_TEST_APP_NAME", marker)
    client = await make_client("notify:\n  - name: phone\n    url: !env_var DM_TEST_APP_NAME\n")
    app = client.server.app[APPLIANCE_KEY]
    assert app.redactor(f"sent to {marker}") == "sent to ***"
