"""Deploy policies and the working-folder rule on resolved models and raw compose files (no engine needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from addons.stacks.containment import check_model, scan_sources
from addons.stacks.hermetic import compose_env
from addons.stacks.policy import Places, Policy, check, config_summary, effective, image_repository
from addons.stacks.schema import CONFIG_SCHEMA


def _rules(model: dict[str, Any], policy: Policy, places: Places) -> list[str]:
    return [v.rule for v in check(model, policy, places)]


@pytest.fixture
def places(tmp_path: Path) -> Places:
    """A stack folder under a data dir under a config dir, as a real install lays them out."""
    own = tmp_path / "config" / ".dockmaster" / "stacks" / "app" / "work"
    own.mkdir(parents=True)
    return Places(own=own, dockmaster=(str(tmp_path / "config"), str(tmp_path / "config" / ".dockmaster")))


def _bind(source: str, *, read_only: bool = False) -> dict[str, Any]:
    return {"services": {"app": {"image": "busybox", "volumes": [
        {"type": "bind", "source": source, "target": "/x", "read_only": read_only}]}}}


@pytest.mark.parametrize(("source", "rules"), [
    ("/", ["docker_socket", "dockmaster_bind", "system_bind"]),
    ("/etc", ["system_bind"]),
    ("/etc/ssl/private", ["system_bind"]),
    ("/var", ["docker_socket", "system_bind"]),
    ("/var/run/docker.sock", ["docker_socket"]),
    ("/srv/other/docker.sock", ["docker_socket"]),
    ("/mnt/user/appdata/app", []),
])
def test_binds_under_baseline(places: Places, source: str, rules: list[str]) -> None:
    assert _rules(_bind(source), Policy(), places) == rules


def test_the_stacks_own_folder_is_always_allowed_and_dockmaster_folders_never(places: Places) -> None:
    assert _rules(_bind(str(places.own / "data")), Policy(bind_roots=("/mnt/user/appdata",)), places) == []
    assert _rules(_bind(str(places.own.parent)), Policy(), places) == ["dockmaster_bind"]
    assert _rules(_bind(str(Path(places.dockmaster[0]).parent)), Policy(), places) == ["dockmaster_bind"]


def test_a_symlink_in_the_working_folder_is_followed(places: Places) -> None:
    (places.own / "data").mkdir()
    os.symlink("/etc", places.own / "data" / "link")
    assert _rules(_bind(str(places.own / "data" / "link")), Policy(), places) == ["system_bind"]


def test_read_only_clock_files_are_allowed(places: Places) -> None:
    assert _rules(_bind("/etc/localtime", read_only=True), Policy(), places) == []
    assert _rules(_bind("/etc/localtime"), Policy(), places) == ["system_bind"]


def test_privileged_level_and_allow_lists(places: Places) -> None:
    model = {"services": {"app": {"image": "busybox", "privileged": True, "cap_add": ["NET_ADMIN", "CHOWN"],
                                  "volumes": [{"type": "bind", "source": "/var/run/docker.sock", "target": "/s"}]}}}
    assert _rules(model, Policy(), places) == ["privileged", "cap_add", "docker_socket"]
    assert _rules(model, Policy(allow=frozenset({"docker_socket", "cap_add"})), places) == ["privileged"]
    assert _rules(model, Policy(level="privileged", bind_roots=("/mnt",)), places) == []


def test_registries_and_digests(places: Places) -> None:
    pinned = "ghcr.io/me/app@sha256:" + "a" * 64
    model = {"services": {"hub": {"image": "nginx:1.27"}, "mine": {"image": pinned},
                          "built": {"image": "local/app", "build": {"context": str(places.own)}}}}
    policy = Policy(registries=("ghcr.io/me",), require_digest=True)
    found = [(v.service, v.rule) for v in check(model, policy, places)]
    assert found == [("built", "registries"), ("hub", "registries"), ("hub", "require_digest")]
    assert image_repository("nginx") == "docker.io/library/nginx"
    assert image_repository("registry.lan:5000/a/b:1@sha256:00") == "registry.lan:5000/a/b"
    assert image_repository("index.docker.io/me/app") == "docker.io/me/app"


def test_every_violation_says_how_to_allow_it(places: Places) -> None:
    (violation,) = check({"services": {"app": {"pid": "host"}}}, Policy(), places)
    assert str(violation) == ("service app: pid: host — refused by rule host_pid (the host's process namespace shows "
                              "every process on the host); to allow it set `policy: {allow: [host_pid]}` (or "
                              "`policy: privileged`) on the stack")


def test_effective_policy_from_settings_and_stack() -> None:
    settings = {"level": "baseline", "registries": ["ghcr.io"], "bind_roots": ["/mnt/user/appdata"]}
    assert effective(settings, None).describe() == "baseline; registries ghcr.io; binds under /mnt/user/appdata"
    assert effective(settings, "privileged").describe() == "privileged; registries ghcr.io"
    assert effective(None, {"allow": ["docker_socket"]}).describe() == "baseline; allows docker_socket"


def test_check_config_summary_names_each_stacks_policy() -> None:
    conf = CONFIG_SCHEMA([
        {"name": "proxy", "repo": "infra", "path": "proxy", "policy": {"allow": ["docker_socket"]}},
        {"name": "vpn", "repo": "infra", "path": "vpn", "policy": "privileged"},
        {"discover": {"repo": "infra", "path": "apps/*"}},
        {"settings": {"policy": {"require_digest": True}}},
    ])
    assert config_summary(conf) == [
        "stacks: default deploy policy baseline; images pinned by digest",
        "  stack proxy: policy baseline; allows docker_socket; images pinned by digest",
        "  stack vpn: policy privileged; images pinned by digest",
        "  discover infra:apps/*: policy baseline; images pinned by digest",
    ]


def test_raw_scan_follows_includes_and_extends_inside_and_stops_outside(tmp_path: Path) -> None:
    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    (root / "compose.yaml").write_text(
        "include: [sub/inc.yaml]\nservices:\n  app:\n    image: x\n    extends: {file: base.yaml, service: b}\n")
    (root / "base.yaml").write_text("services:\n  b:\n    env_file: !reset [../../leak.env]\n")
    (root / "sub" / "inc.yaml").write_text("services:\n  inc:\n    image: x\n    label_file: ../l.labels\n")
    found = [(v.service, v.key, v.value.split(" ")[0]) for v in scan_sources(root, ["compose.yaml"])]
    assert found == [("b", "env_file (in base.yaml)", "../../leak.env")]


def test_model_paths_outside_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    model = {"services": {"app": {"build": {"context": str(root), "dockerfile": "Dockerfile",
                                            "additional_contexts": {"ok": str(root), "img": "docker-image://x"}}},
                          "far": {"build": {"context": "https://github.com/me/app.git"}}},
             "secrets": {"s": {"file": str(root / ".." / "db")}}, "configs": {"c": {"file": str(root / "c.txt")}}}
    found = [(v.key, v.value) for v in check_model(model, root)]
    assert found == [("secrets.s.file", f"{root / '..' / 'db'} (resolves to {tmp_path / 'db'}) is outside the "
                                         "working folder")]


def test_compose_env_keeps_only_what_compose_needs(tmp_path: Path) -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "SOPS_AGE_KEY": "AGE-SECRET", "DOCKER_HOST": "unix:///x.sock",
               "DM_TOKEN": "t"}
    env = compose_env({"MINE": "1", "DOCKER_HOST": "tcp://evil:2375", "PATH": "/tmp"}, home=tmp_path,
                      environ=environ)
    assert env == {"MINE": "1", "PATH": "/usr/bin", "HOME": str(tmp_path), "DOCKER_CONFIG": "/root/.docker",
                   "DOCKER_HOST": "unix:///x.sock"}
