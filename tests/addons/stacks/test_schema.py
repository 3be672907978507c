"""The `stacks:` config block: every problem located with a clear message; discover folders to names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from addons.stacks.models import slug_from_folder
from addons.stacks.render import RenderError, render
from appliance.config import check_config

BASE = {"repos": [{"name": "infra", "url": "/srv/git/infra.git"}]}


def _issues(tmp_path: Path, stacks: Any) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "stacks": stacks}, sort_keys=False))
    return [str(issue).split(" (")[0] for issue in check_config(path).issues]


@pytest.mark.parametrize(
    ("stacks", "message"),
    [
        ([{"name": "web", "repo": "infra", "path": "../x"}], "stacks[0].path: path must stay inside the repo: '../x'"),
        ([{"name": "web", "repo": "infra", "path": "/etc"}], "stacks[0].path: path must stay inside the repo: '/etc'"),
        ([{"name": "Web!", "repo": "infra", "path": "a"}], "stacks[0].name: invalid name 'Web!'"),
        ([{"name": "web", "repo": "infra"}], "stacks[0].path: required key 'path' is missing"),
        ([{"name": "web", "repo": "infra", "path": "a", "pull": "sometimes"}],
         "stacks[0].pull: expected one of missing, always, never, got 'sometimes'"),
        ([{"name": "web", "repo": "infra", "path": "a", "sops": "../keys.env"}],
         "stacks[0].sops: path must stay inside the repo: '../keys.env'"),
        ([{"name": "web", "repo": "infra", "path": "a", "health_timeout": "soon"}],
         "stacks[0].health_timeout: invalid duration 'soon'"),
        ([{"name": "web", "repo": "infra", "path": "a"}, {"name": "web", "repo": "infra", "path": "b"}],
         "stacks[1].name: duplicate stack name 'web'"),
        ([{"discover": {"repo": "infra", "path": "stacks"}}],
         "stacks[0].discover.path: discover path must be a glob such as 'stacks/*', got 'stacks'"),
        ([{"settings": {"drift_check": "every minute"}}], "stacks[0].settings.drift_check: invalid cron expression"),
        ([{"name": "web", "repo": "infra", "path": "a", "colour": "red"}], "stacks[0].colour: unknown key 'colour'"),
    ],
)
def test_config_errors_are_located(tmp_path: Path, stacks: Any, message: str) -> None:
    issues = _issues(tmp_path, stacks)
    assert any(issue.startswith(message) for issue in issues), issues


def test_valid_config_gets_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "stacks": [
        {"name": "web", "repo": "infra", "path": "stacks/web/"},
        {"discover": {"repo": "infra", "path": "apps/*", "auto_deploy": False}},
    ]}))
    result = check_config(path)
    assert result.ok, result.issues
    conf = result.domains["stacks"]
    web = conf["stacks"][0]
    assert web["path"] == "stacks/web" and web["auto_deploy"] is True and web["pull"] == "missing"
    assert web["health_timeout"].total_seconds() == 120 and web["rollback"] is True and web["sops"] == []
    assert conf["discover"][0]["auto_deploy"] is False
    assert conf["settings"]["drift_check"] == "*/5 * * * *" and conf["settings"]["keep_snapshots"] == 5


@pytest.mark.parametrize(("folder", "name"), [("stacks/Traefik", "traefik"), ("apps/my app", "my-app"),
                                              ("x/---", None)])
def test_discovered_folder_names(folder: str, name: str | None) -> None:
    assert slug_from_folder(folder) == name


def test_render_refuses_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    root.mkdir()
    (root / "compose.yaml").write_text("services: {}\n")
    (root / "secret").symlink_to("/etc/hostname")
    with pytest.raises(RenderError, match="secret is a symlink that leads outside the stack folder"):
        render(root, {})


def test_render_writes_templates_without_suffix(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    (root / "conf").mkdir(parents=True)
    (root / "compose.yaml.j2").write_text("services: {{ services }}\n")
    (root / "conf" / "app.ini.j2").write_text("{% include 'conf/part.txt' %}domain={{ domain }}\n")
    (root / "conf" / "part.txt").write_text("# part\n")
    result = render(root, {"services": "{}", "domain": "example.lan"})
    assert (root / "compose.yaml").read_text() == "services: {}\n"
    assert (root / "conf" / "app.ini").read_text() == "# part\ndomain=example.lan\n"
    assert not (root / "compose.yaml.j2").exists()
    assert result.compose_files == ["compose.yaml"]
    assert sorted(result.templates) == ["compose.yaml.j2", "conf/app.ini.j2"]


async def test_unknown_repo_or_window_disables_the_addon_with_a_clear_error(make_client: Any, tmp_path: Path) -> None:
    client = await make_client({
        "repos": [{"name": "infra", "url": str(tmp_path / "missing.git")}],
        "windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h"}},
        "stacks": [{"name": "web", "repo": "other", "path": "a"},
                   {"discover": {"repo": "infra", "path": "stacks/*", "window": "weekend"}}],
    })
    from appliance.keys import APPLIANCE_KEY

    app = client.server.app[APPLIANCE_KEY]
    error = app.addon_errors["stacks"].error
    assert "stack web: no repo named 'other' (known: infra)" in error
    assert "discover stacks/*: no maintenance window named 'weekend'" in error
