"""Compose model → Swarm spec: durations, refusals by name, and the spec of one service."""

from __future__ import annotations

from typing import Any

import pytest

from addons.stacks.swarm_spec import NAMESPACE_LABEL, duration_ns, refusals, service_spec
from appliance.errors import ValidationFailed


@pytest.mark.parametrize(("text", "ns"), [
    ("500ms", 500_000_000), ("2s", 2 * 10**9), ("1m30s", 90 * 10**9), ("1.5s", 1_500_000_000),
    ("0s", 0), ("1h", 3600 * 10**9), (3, 3 * 10**9),
])
def test_durations(text: Any, ns: int) -> None:
    assert duration_ns(text) == ns


@pytest.mark.parametrize("text", ["5 s", "1x", "s", "10s5"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailed, match="not a duration"):
        duration_ns(text)


@pytest.mark.parametrize(("service", "problem"), [
    ({"ulimits": {"nofile": 1024}}, "service web: ulimits (Swarm stacks do not support it)"),
    ({"pid": "host"}, "service web: pid (Swarm stacks do not support it)"),
    ({"deploy": {"mode": "replicated-job"}}, "service web: deploy.mode replicated-job (jobs never converge)"),
    ({"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}},
     "service web: deploy.resources.reservations.devices (not translated for Swarm)"),
    ({"volumes": [{"type": "npipe", "source": "x", "target": "/x"}]},
     "service web: volumes type npipe (Swarm mounts volume, bind, tmpfs)"),
])
def test_unknown_and_unsupported_keys_are_named(service: dict[str, Any], problem: str) -> None:
    model = {"services": {"web": {"image": "busybox", **service}}}
    assert refusals(model) == [problem]


def test_ignored_keys_and_published_ports_on_every_address_pass() -> None:
    model = {"services": {"web": {
        "image": "busybox", "depends_on": {"db": {"condition": "service_started"}}, "container_name": "web",
        "ports": [{"target": 80, "published": "8080", "host_ip": "0.0.0.0", "mode": "ingress"}],
    }}}
    assert refusals(model) == []


def test_service_spec_carries_labels_secrets_networks_and_update_policy() -> None:
    model = {
        "networks": {"default": {"name": "dm-x_default"}},
        "volumes": {"data": {"name": "dm-x_data"}},
        "services": {"web": {
            "image": "busybox", "command": ["httpd"], "entrypoint": None, "labels": {"a": "b"},
            "environment": {"A": "1", "UNSET": None}, "restart": "on-failure",
            "ports": [{"target": 80, "published": "8080", "mode": "host", "protocol": "tcp"}],
            "secrets": [{"source": "token", "target": "/run/secrets/token"}],
            "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
            "deploy": {"replicas": 3, "labels": {"d": "e"}, "update_config": {
                "parallelism": 2, "delay": "1s", "failure_action": "rollback", "monitor": "5s"}},
        }},
    }
    spec = service_spec("dm-x", "web", model, labels={"io.dockmaster.revision": "r9"},
                        secrets={"token": ("sid", "dm-x_token_abc")})
    container = spec.task_template["ContainerSpec"]
    assert spec.name == "dm-x_web"
    assert spec.labels["io.dockmaster.revision"] == "r9" and spec.labels[NAMESPACE_LABEL] == "dm-x"
    assert spec.labels["d"] == "e" and "a" not in spec.labels
    assert container["Labels"] == {"a": "b", NAMESPACE_LABEL: "dm-x"}
    assert container["Env"] == ["A=1"] and container["Args"] == ["httpd"] and "Command" not in container
    assert container["Secrets"] == [{"SecretID": "sid", "SecretName": "dm-x_token_abc",
                                     "File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 0o444}}]
    assert container["Mounts"][0]["Source"] == "dm-x_data"
    assert spec.task_template["Networks"] == [{"Target": "dm-x_default", "Aliases": ["web"]}]
    assert spec.task_template["RestartPolicy"] == {"Condition": "on-failure"}
    assert spec.mode == {"Replicated": {"Replicas": 3}}
    assert spec.endpoint_spec["Ports"] == [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host",
                                            "PublishedPort": 8080}]
    assert spec.update_config == {"Parallelism": 2, "Delay": 10**9, "Monitor": 5 * 10**9, "FailureAction": "rollback"}
