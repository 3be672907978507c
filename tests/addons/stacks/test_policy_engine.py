"""Hermetic compose runs, the working-folder rule and deploy policies on the real engine with real git repos."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.keys import APPLIANCE_KEY
from tests.addons.notify.conftest import Receiver, receiver  # noqa: F401 - the fixture is used by name
from tests.conftest import bearer

from .conftest import GitRemote, StackApp, container_ids, httpd_compose, served, sync, wait_idle

pytestmark = pytest.mark.docker

HOSTILE = Path(__file__).parent / "hostile"
DOCKMASTER = str(Path(sys.executable).parent / "dockmaster")


def _stack(name: str, folder: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "repo": "infra", "path": f"stacks/{folder}", "health_timeout": "20s", **extra}


async def _last(app: Any, name: str) -> dict[str, Any]:
    runs: list[dict[str, Any]] = await app.runs.list(target=name, limit=1)
    return runs[0]


def _env(docker_client: Any, project: str) -> dict[str, str]:
    container = docker_client.containers.list(filters={"label": f"com.docker.compose.project={project}"})[0]
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


async def test_compose_never_sees_dockmasters_environment(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = f"dm-leak-{suffix}"
    monkeypatch.setenv("SOME_DOCKMASTER_VAR", marker)
    monkeypatch.setenv("SOPS_AGE_KEY", f"AGE-SECRET-KEY-{suffix}")
    extra = ('    environment:\n      LEAK: "${SOME_DOCKMASTER_VAR}"\n      KEY: "${SOPS_AGE_KEY:-unset}"\n'
             '      MINE: "${MINE}"\n      HOME_SEEN: "${HOME}"\n')
    remote.commit({"stacks/env/compose.yaml": httpd_compose(busybox_image, "env", extra_env=extra)}, "Env stack")
    name = f"env-{suffix}"
    _, app = await stacks_app([_stack(name, "env", env={"MINE": "declared"})])
    run = await _last(app, name)
    assert run["status"] == "succeeded", run
    env = _env(docker_client, f"dm-{name}")
    assert env["LEAK"] == "" and env["KEY"] == "unset" and env["MINE"] == "declared"
    assert env["HOME_SEEN"].startswith("/tmp/dockmaster-home-") and not Path(env["HOME_SEEN"]).exists()
    assert marker not in str(env)


async def test_undeclared_variable_warning_reaches_the_run_log(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, suffix: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_DOCKMASTER_VAR", "x")
    extra = '    environment:\n      LEAK: "${SOME_DOCKMASTER_VAR}"\n'
    remote.commit({"stacks/warn/compose.yaml": httpd_compose(busybox_image, "w", extra_env=extra)}, "Warn stack")
    name = f"warn-{suffix}"
    client, app = await stacks_app([_stack(name, "warn")])
    run = await _last(app, name)
    log = await (await client.get(f"/api/v1/runs/{run['id']}/log", headers=bearer("read"))).text()
    assert 'The \\"SOME_DOCKMASTER_VAR\\" variable is not set' in log or \
        'The "SOME_DOCKMASTER_VAR" variable is not set' in log, log


async def test_baseline_refuses_host_takeover_and_leaves_the_running_stack_alone(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
    receiver: Receiver,  # noqa: F811 - the imported fixture
) -> None:
    name = f"pol-{suffix}"
    remote.commit({"stacks/pol/compose.yaml": httpd_compose(busybox_image, "pol-v1")}, "Good stack")
    client, app = await stacks_app(
        [_stack(name, "pol"), _stack(f"priv-{suffix}", "evil", policy="privileged", auto_deploy=False)],
        notify=[{"name": "phone", "url": receiver.json_url("/hook"), "events": ["policy_violation"]}])
    before = container_ids(docker_client, f"dm-{name}")
    assert before and served(docker_client, f"dm-{name}") == "pol-v1"

    evil = httpd_compose(busybox_image, "pol-v2") + f"""  evil:
    image: {busybox_image}
    command: ["sleep", "3600"]
    privileged: true
    pid: host
    cap_add: [SYS_ADMIN]
    volumes: ["/:/host:ro", "/var/run/docker.sock:/var/run/docker.sock"]
  hostnet:
    image: {busybox_image}
    command: ["sleep", "3600"]
    network_mode: host
"""
    # The engine of the test setup runs in a container and cannot start `privileged: true` containers itself:
    # the privileged stack gets every other rule (pid, network, SYS_ADMIN, the socket and / binds).
    unprivileged = evil.replace("    privileged: true\n", "")
    sha = remote.commit({"stacks/pol/compose.yaml": evil, "stacks/evil/compose.yaml": unprivileged}, "Take the host")
    await sync(app)

    run = await _last(app, name)
    assert run["status"] == "failed"
    for rule, value in [("privileged", "privileged: true"), ("host_pid", "pid: host"), ("cap_add", "SYS_ADMIN"),
                        ("system_bind", "volumes /host: /"), ("docker_socket", "/var/run/docker.sock"),
                        ("host_network", "network_mode: host")]:
        assert f"rule {rule}" in run["error"] and value in run["error"], (rule, run["error"])
    assert "policy: {allow: [docker_socket]}" in run["error"]
    assert container_ids(docker_client, f"dm-{name}") == before
    assert served(docker_client, f"dm-{name}") == "pol-v1"
    assert run["details"]["policy_violations"]

    (posted,) = await receiver.wait_for(1)
    assert posted.json["title"] == f"Deploy of {name} refused by its policy"
    assert f"Revision `{sha[:7]}` was refused before any container was touched" in posted.json["message"]
    assert "rule docker_socket" in posted.json["message"]

    page = await (await client.get(f"/api/v1/stacks/{name}", headers=bearer("read"))).json()
    assert page["policy"] == "baseline" and len(page["policy_violations"]) >= 7

    # The same files under `policy: privileged` deploy (all but `privileged: true`, see above).
    resp = await client.post(f"/api/v1/stacks/priv-{suffix}/deploy", json={}, headers=bearer("deploy"))
    assert resp.status == 202
    await wait_idle(app)
    priv = await _last(app, f"priv-{suffix}")
    assert priv["status"] == "succeeded", (priv["error"], priv["details"])
    assert set(container_ids(docker_client, f"dm-priv-{suffix}")) == {"web", "evil", "hostnet"}


async def test_registries_and_require_digest_refuse(
    remote: GitRemote, make_client: Any, cleanup_projects: list[str], busybox_image: str, docker_client: Any,
    suffix: str,
) -> None:
    name = f"reg-{suffix}"
    cleanup_projects.append(f"dm-{name}")
    remote.commit({"stacks/reg/compose.yaml": httpd_compose(busybox_image, "reg")}, "Unpinned image")
    client = await make_client({
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [_stack(name, "reg"),
                   {"settings": {"policy": {"registries": ["registry.example.lan"], "require_digest": True}}}]})
    app = client.server.app[APPLIANCE_KEY]
    await wait_idle(app)
    run = await _last(app, name)
    assert run["status"] == "failed"
    assert "rule registries" in run["error"] and "rule require_digest" in run["error"]
    assert busybox_image in run["error"]
    assert container_ids(docker_client, f"dm-{name}") == {}


async def test_paths_leaving_the_working_folder_fail_before_any_container(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str, tmp_path: Path,
) -> None:
    name = f"link-{suffix}"
    remote.commit({"stacks/link/compose.yaml": httpd_compose(busybox_image, "v1")}, "Plain stack")
    _, app = await stacks_app([_stack(name, "link")])
    before = container_ids(docker_client, f"dm-{name}")
    work = app.data_dir / "stacks" / name / "work"
    secret = tmp_path / "secrets.yaml"
    secret.write_text("token: dm-secret-value\n")
    # What a container could have written into its ./data: a link that leads out of the folder.
    (work / "data").mkdir(exist_ok=True)
    os.symlink(secret, work / "data" / "leak.env")
    extra = "    env_file: [data/leak.env]\n"
    remote.commit({"stacks/link/compose.yaml": httpd_compose(busybox_image, "v2", extra_env=extra)}, "Read the link")
    await sync(app)
    run = await _last(app, name)
    assert run["status"] == "failed"
    assert f"service web: env_file: data/leak.env (resolves to {secret}) is outside the working folder" in run["error"]
    assert container_ids(docker_client, f"dm-{name}") == before


async def test_dry_run_lists_violations_and_changes_nothing(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str,
) -> None:
    name = f"dry-{suffix}"
    remote.commit({"stacks/dry/compose.yaml": httpd_compose(busybox_image, "v1")}, "Plain stack")
    client, app = await stacks_app([_stack(name, "dry")])
    before = container_ids(docker_client, f"dm-{name}")
    remote.commit({"stacks/dry/compose.yaml": httpd_compose(busybox_image, "v2", extra_env="    privileged: true\n")},
                  "Privileged")
    await sync(app)  # the automatic deploy is refused
    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={"dry_run": True}, headers=bearer("deploy"))
    run_id = (await resp.json())["run_id"]
    await wait_idle(app)
    run = await app.runs.get(run_id)
    assert run["status"] == "failed" and run["error"].startswith("would be refused")
    assert any("rule privileged" in v for v in run["details"]["policy_violations"])
    assert "privileged: true" in run["details"]["diff"]
    assert container_ids(docker_client, f"dm-{name}") == before


HOSTILE_FILES = sorted(HOSTILE.glob("*.yaml"))


def test_the_corpus_is_large_and_says_what_each_file_tries() -> None:
    assert len(HOSTILE_FILES) >= 30
    for path in HOSTILE_FILES:
        text = path.read_text()
        assert re.match(r"# tries: .+\n# refused by: \w+\n", text), path.name
        yaml.safe_load(text)


async def test_every_hostile_compose_file_is_refused_before_a_container_exists(
    remote: GitRemote, make_client: Any, cleanup_projects: list[str], docker_client: Any, suffix: str,
) -> None:
    expected = {}
    files: dict[str, str | None] = {}
    for path in HOSTILE_FILES:
        folder = f"{path.stem}-{suffix}"
        expected[folder] = re.search(r"# refused by: (\w+)", path.read_text()).group(1)  # type: ignore[union-attr]
        files[f"hostile/{folder}/compose.yaml"] = path.read_text()
        files[f"hostile/{folder}/Dockerfile"] = "FROM scratch\n"
        cleanup_projects.append(f"dm-{folder}")
    remote.commit(files, "A hostile corpus")
    client = await make_client({"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
                                "stacks": [{"discover": {"repo": "infra", "path": "hostile/*"}}]})
    app = client.server.app[APPLIANCE_KEY]
    await wait_idle(app, timeout=300)
    wrong = {}
    for folder, rule in expected.items():
        run = await _last(app, folder)
        if run["status"] != "failed" or f"rule {rule}" not in (run["error"] or ""):
            wrong[folder] = (run["status"], run["error"])
    assert wrong == {}
    leftovers = [c.name for c in docker_client.containers.list(all=True) if any(
        c.labels.get("com.docker.compose.project") == f"dm-{folder}" for folder in expected)]
    assert leftovers == []


def test_check_config_prints_each_stacks_effective_policy(tmp_path: Path, write_config: Any) -> None:
    path = write_config({"repos": [{"name": "infra", "url": str(tmp_path), "branch": "main"}], "stacks": [
        {"name": "proxy", "repo": "infra", "path": "proxy", "policy": {"allow": ["docker_socket"]}},
        {"name": "vpn", "repo": "infra", "path": "vpn", "policy": "privileged"},
        {"settings": {"policy": {"bind_roots": ["/mnt/user/appdata"]}}}]})
    out = subprocess.run([DOCKMASTER, "check-config", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "  stack proxy: policy baseline; allows docker_socket; binds under /mnt/user/appdata" in out.stdout
    assert "  stack vpn: policy privileged" in out.stdout
