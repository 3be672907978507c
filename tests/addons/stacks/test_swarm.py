"""Swarm stacks through the docker SDK, on a real single-node Swarm (a second dockerd)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from addons.stacks.swarm import deploy_stack, remove_stack, secret_name
from addons.stacks.swarm_spec import NAMESPACE_LABEL, SwarmUnsupported
from tests.support.dockerd import ExtraEngine
from tests.support.images import BUSYBOX_IMAGE

from .conftest import swarm_stack_yaml as stack_yaml

pytestmark = pytest.mark.docker

LABELS = {"io.dockmaster.managed": "true", "io.dockmaster.stack": "web", "io.dockmaster.revision": "r1"}



def resolve(compose_argv: list[str], folder: Path, project: str, text: str) -> dict[str, Any]:
    """The model `compose config --format json` prints for a compose file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(text)
    (folder / "token.txt").write_text("from-the-file\n")
    out = subprocess.run([*compose_argv, "-p", project, "-f", str(folder / "compose.yaml"), "config", "--format",
                          "json"], capture_output=True, text=True, check=True, cwd=folder).stdout
    return dict(json.loads(out))


@pytest.fixture
def swarm(swarm_engine: ExtraEngine) -> Iterator[docker.DockerClient]:
    """An SDK client for the test Swarm."""
    client = swarm_engine.client()
    yield client
    client.close()


@pytest.fixture
def namespace(swarm: docker.DockerClient, suffix: str) -> Iterator[str]:
    """A fresh stack namespace, removed after the test."""
    name = f"dm-sw{suffix}"
    yield name
    remove_stack(swarm, name)


def task_containers(client: docker.DockerClient, service: str) -> list[Any]:
    """Running task containers of a service."""
    return client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"})


def served(container: Any) -> str:
    """GET / of a task container through its port published on the node (read on 127.0.0.1)."""
    port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode().strip()


def stack_secrets(client: docker.DockerClient, namespace: str) -> set[str]:
    """Names of the stack's secrets on the engine."""
    return {s.name for s in client.secrets.list(filters={"label": f"{NAMESPACE_LABEL}={namespace}"})}


def test_stack_converges_fails_on_a_bad_update_and_converges_again(
    swarm: docker.DockerClient, namespace: str, compose_argv: list[str], tmp_path: Path
) -> None:
    good = resolve(compose_argv, tmp_path / "good", namespace, stack_yaml())
    result = deploy_stack(swarm, namespace, good, secrets={"token": b"s3cret-v1\n"}, labels=LABELS, timeout=120)
    assert result.ok, result.error
    assert [(p.name, p.running, p.desired) for p in result.services] == [(f"{namespace}_web", 2, 2)]
    service = swarm.services.get(f"{namespace}_web")
    assert service.attrs["Spec"]["Labels"][NAMESPACE_LABEL] == namespace
    assert service.attrs["Spec"]["Labels"]["io.dockmaster.revision"] == "r1"
    network = swarm.networks.get(f"{namespace}_default")
    assert network.attrs["Driver"] == "overlay" and network.attrs["Labels"][NAMESPACE_LABEL] == namespace
    containers = task_containers(swarm, f"{namespace}_web")
    assert len(containers) == 2
    for container in containers:
        assert container.exec_run(["cat", "/run/secrets/token"]).output == b"s3cret-v1\n"
        assert "GREETING=hello" in container.attrs["Config"]["Env"]
        assert served(container) == "s3cret-v1"
    first_secret = secret_name(namespace, "token", b"s3cret-v1\n")
    assert stack_secrets(swarm, namespace) == {first_secret}

    # A new secret value with a healthcheck that can never pass: Swarm pauses the update.
    bad = resolve(compose_argv, tmp_path / "bad", namespace, stack_yaml(probe=8081))
    started = time.monotonic()
    result = deploy_stack(swarm, namespace, bad, secrets={"token": b"s3cret-v2\n"}, labels=LABELS, timeout=120)
    assert not result.ok
    assert time.monotonic() - started < 110, "the failure was found by the timeout, not by Swarm's own state"
    assert f"{namespace}_web:" in result.error
    assert "unhealthy container" in result.error, result.error
    second_secret = secret_name(namespace, "token", b"s3cret-v2\n")
    assert stack_secrets(swarm, namespace) == {first_secret, second_secret}  # kept for the way back

    # Redeploying the previous model converges again, and the failed version's secret goes.
    result = deploy_stack(swarm, namespace, good, secrets={"token": b"s3cret-v1\n"}, labels=LABELS, timeout=120)
    assert result.ok, result.error
    assert swarm.services.get(f"{namespace}_web").id == service.id  # updated in place: Swarm rolled it
    containers = task_containers(swarm, f"{namespace}_web")
    assert sorted(served(c) for c in containers) == ["s3cret-v1", "s3cret-v1"]
    assert stack_secrets(swarm, namespace) == {first_secret}


def test_a_missing_image_is_reported_in_the_tasks_words(
    swarm: docker.DockerClient, namespace: str, compose_argv: list[str], tmp_path: Path
) -> None:
    model = resolve(compose_argv, tmp_path, namespace, stack_yaml(image="dockmaster-test/absent:1"))
    result = deploy_stack(swarm, namespace, model, secrets={"token": b"x"}, labels=LABELS, timeout=120)
    assert not result.ok
    assert "No such image" in result.error and "dockmaster-test/absent:1" in result.error, result.error


def test_services_gone_from_the_model_are_removed(
    swarm: docker.DockerClient, namespace: str, compose_argv: list[str], tmp_path: Path
) -> None:
    two = stack_yaml().replace("services:\n", f"services:\n  side:\n    image: {BUSYBOX_IMAGE}\n"
                                              "    command: [sleep, '600']\n    stop_grace_period: 1s\n", 1)
    result = deploy_stack(swarm, namespace, resolve(compose_argv, tmp_path / "a", namespace, two),
                          secrets={"token": b"x"}, labels=LABELS, timeout=120)
    assert result.ok, result.error
    assert {s.name for s in swarm.services.list(filters={"label": f"{NAMESPACE_LABEL}={namespace}"})} == {
        f"{namespace}_side", f"{namespace}_web"}
    result = deploy_stack(swarm, namespace, resolve(compose_argv, tmp_path / "b", namespace, stack_yaml()),
                          secrets={"token": b"x"}, labels=LABELS, timeout=120)
    assert result.ok, result.error
    assert {s.name for s in swarm.services.list(filters={"label": f"{NAMESPACE_LABEL}={namespace}"})} == {
        f"{namespace}_web"}


@pytest.mark.parametrize(("extra", "message"), [
    ("    build: .\n", "service web: build (Swarm runs only images"),
    ("    privileged: true\n", "service web: privileged (Swarm services cannot be privileged)"),
    ("    devices: ['/dev/null:/dev/null']\n", "service web: devices (Swarm services cannot map devices)"),
    ("    network_mode: host\n", "service web: network_mode (Swarm tasks join the stack's overlay networks)"),
    ("    ports: ['127.0.0.1:8080:8080']\n", "service web: ports (Swarm publishes on every address"),
])
def test_keys_swarm_cannot_honour_are_refused_before_any_change(
    swarm: docker.DockerClient, namespace: str, compose_argv: list[str], tmp_path: Path, extra: str, message: str
) -> None:
    text = stack_yaml().replace("    stop_grace_period: 1s\n", "    stop_grace_period: 1s\n" + extra)
    if "ports:" in extra:
        text = text.replace("    ports: [{target: 8080, mode: host}]\n", "")
    model = resolve(compose_argv, tmp_path, namespace, text)
    with pytest.raises(SwarmUnsupported) as caught:
        deploy_stack(swarm, namespace, model, secrets={"token": b"x"}, labels=LABELS)
    assert message in str(caught.value)
    stack = {"label": f"{NAMESPACE_LABEL}={namespace}"}
    assert not swarm.services.list(filters=stack)
    assert not swarm.networks.list(filters=stack)
    assert not swarm.secrets.list(filters=stack)
