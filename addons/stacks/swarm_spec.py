"""Translating a resolved compose model (`compose config --format json`) into Swarm API specs.

Pure functions, no engine calls. Keys are allowed by name: a key that Swarm cannot honour, or that
this translation does not know, is refused with the service and key named, before anything changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from appliance.errors import ValidationFailed

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
SECRETS_DIR = "/run/secrets/"

# Service keys Swarm honours (translated below), and keys that are fine to ignore as `docker stack
# deploy` does (ordering and names that Swarm decides itself). Anything else is refused.
SUPPORTED = frozenset({
    "image", "command", "entrypoint", "environment", "labels", "deploy", "ports", "healthcheck",
    "volumes", "secrets", "networks", "working_dir", "user", "hostname", "stop_grace_period",
    "stop_signal", "restart", "tty", "stdin_open", "read_only", "init", "extra_hosts", "dns",
    "dns_search", "logging", "cap_add", "cap_drop", "sysctls", "group_add",
})
IGNORED = frozenset({"depends_on", "container_name", "expose", "env_file", "pull_policy", "profiles"})
DEPLOY_KEYS = frozenset({
    "mode", "replicas", "labels", "update_config", "rollback_config", "restart_policy", "resources",
    "placement", "endpoint_mode",
})
WHY = {
    "build": "Swarm runs only images that exist in a registry or on the node",
    "privileged": "Swarm services cannot be privileged",
    "devices": "Swarm services cannot map devices",
    "network_mode": "Swarm tasks join the stack's overlay networks",
    "ports": "Swarm publishes on every address of the node; host_ip cannot be honoured",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


class SwarmUnsupported(ValidationFailed):
    """The compose model uses keys a Swarm stack cannot honour; nothing was changed."""

    code = "swarm_unsupported"


def duration_ns(value: Any) -> int:
    """A compose duration (`1m30s`, `500ms`, or a number of seconds) in nanoseconds."""
    if isinstance(value, int | float):
        return int(value * 10**9)
    text = str(value).strip()
    if not text or text == "0":
        return 0
    total, end = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != end:
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        end = match.end()
    if end != len(text):
        raise ValidationFailed(f"not a duration: {text!r}")
    return int(total)


def refusals(model: dict[str, Any]) -> list[str]:
    """Every reason the model cannot become a Swarm stack, each naming its service and key."""
    problems: list[str] = []
    for name, service in sorted((model.get("services") or {}).items()):
        for key in sorted(service):
            if key in IGNORED or (key in SUPPORTED and key != "ports"):
                continue
            if key == "ports":
                if any(port.get("host_ip") not in (None, "", "0.0.0.0", "::") for port in service["ports"]):
                    problems.append(f"service {name}: ports ({WHY['ports']})")
                continue
            reason = WHY.get(key, "Swarm stacks do not support it")
            problems.append(f"service {name}: {key} ({reason})")
        if (service.get("deploy") or {}).get("mode", "replicated") not in ("replicated", "global"):
            problems.append(f"service {name}: deploy.mode {service['deploy']['mode']} (jobs never converge)")
        for key in sorted(set(service.get("deploy") or {}) - DEPLOY_KEYS):
            problems.append(f"service {name}: deploy.{key} (Swarm stacks do not support it)")
        resources = (service.get("deploy") or {}).get("resources") or {}
        for kind in ("limits", "reservations"):
            for key in sorted(set(resources.get(kind) or {}) - {"cpus", "memory", "pids"}):
                problems.append(f"service {name}: deploy.resources.{kind}.{key} (not translated for Swarm)")
        for volume in service.get("volumes") or []:
            if volume.get("type") not in ("volume", "bind", "tmpfs"):
                problems.append(f"service {name}: volumes type {volume.get('type')} (Swarm mounts volume, bind, tmpfs)")
    for key, network in sorted((model.get("networks") or {}).items()):
        driver = network.get("driver")
        if not network.get("external") and driver not in (None, "overlay"):
            problems.append(f"network {key}: driver {driver} (a Swarm stack's networks are overlay networks)")
    for key, secret in sorted((model.get("secrets") or {}).items()):
        if secret.get("environment"):
            problems.append(f"secret {key}: environment (give the value as a SOPS secret or a file)")
    return problems


def check_supported(model: dict[str, Any]) -> None:
    """Raise SwarmUnsupported listing every key a Swarm stack cannot honour."""
    problems = refusals(model)
    if problems:
        raise SwarmUnsupported("cannot deploy as a Swarm stack: " + "; ".join(problems))


def network_name(namespace: str, key: str, model: dict[str, Any]) -> str:
    """The engine name of a stack network: its `name:` (compose fills it in), else `<namespace>_<key>`."""
    network = (model.get("networks") or {}).get(key) or {}
    return str(network.get("name") or f"{namespace}_{key}")


def network_spec(namespace: str, key: str, model: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `networks.create` for a stack's own (not external) network."""
    network = (model.get("networks") or {}).get(key) or {}
    labels = {**(network.get("labels") or {}), NAMESPACE_LABEL: namespace}
    spec: dict[str, Any] = {
        "driver": "overlay", "labels": labels, "options": network.get("driver_opts") or None,
        "internal": bool(network.get("internal")), "attachable": bool(network.get("attachable")),
        "scope": "swarm",
    }
    subnets = [entry for entry in ((network.get("ipam") or {}).get("config") or []) if entry.get("subnet")]
    if subnets:
        from docker.types import IPAMConfig, IPAMPool

        pools = [IPAMPool(subnet=entry["subnet"], gateway=entry.get("gateway")) for entry in subnets]
        spec["ipam"] = IPAMConfig(pool_configs=pools)
    return spec


def secret_file(target: str | None, source: str) -> str:
    """The file name under /run/secrets for a service's secret entry."""
    if not target:
        return source
    return target.removeprefix(SECRETS_DIR)


def file_mode(value: Any) -> int:
    """A secret file's mode: compose gives a number, or an octal string such as "0440"."""
    if value is None or value == "":
        return 0o444
    return value if isinstance(value, int) else int(str(value), 8)


@dataclass
class ServiceSpec:
    """One Swarm service spec, split the way the SDK's create_service/update_service take it."""

    name: str
    task_template: dict[str, Any]
    labels: dict[str, str]
    mode: dict[str, Any]
    endpoint_spec: dict[str, Any]
    update_config: dict[str, Any] | None
    rollback_config: dict[str, Any] | None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `APIClient.create_service` (and `update_service`)."""
        return {
            "task_template": self.task_template, "name": self.name, "labels": self.labels, "mode": self.mode,
            "endpoint_spec": self.endpoint_spec, "update_config": self.update_config,
            "rollback_config": self.rollback_config,
        }


def _update_config(conf: dict[str, Any] | None) -> dict[str, Any] | None:
    if not conf:
        return None
    out: dict[str, Any] = {"Parallelism": int(conf.get("parallelism", 1))}
    for key, api in (("delay", "Delay"), ("monitor", "Monitor")):
        if conf.get(key) is not None:
            out[api] = duration_ns(conf[key])
    for key, api in (("failure_action", "FailureAction"), ("order", "Order")):
        if conf.get(key):
            out[api] = conf[key]
    if conf.get("max_failure_ratio") is not None:
        out["MaxFailureRatio"] = float(conf["max_failure_ratio"])
    return out


def _restart_policy(service: dict[str, Any]) -> dict[str, Any] | None:
    conf = (service.get("deploy") or {}).get("restart_policy")
    if conf:
        policy: dict[str, Any] = {"Condition": conf.get("condition", "any")}
        for key, api in (("delay", "Delay"), ("window", "Window")):
            if conf.get(key) is not None:
                policy[api] = duration_ns(conf[key])
        if conf.get("max_attempts") is not None:
            policy["MaxAttempts"] = int(conf["max_attempts"])
        return policy
    restart = service.get("restart")
    if restart in ("no", "on-failure"):
        return {"Condition": "none" if restart == "no" else "on-failure"}
    return None  # Swarm's default restarts always, as `unless-stopped` and `always` ask


def _healthcheck(conf: dict[str, Any] | None) -> dict[str, Any] | None:
    if not conf:
        return None
    if conf.get("disable"):
        return {"Test": ["NONE"]}
    test = conf.get("test")
    out: dict[str, Any] = {"Test": ["CMD-SHELL", test] if isinstance(test, str) else test}
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                     ("start_interval", "StartInterval")):
        if conf.get(key) is not None:
            out[api] = duration_ns(conf[key])
    if conf.get("retries") is not None:
        out["Retries"] = int(conf["retries"])
    return out


def _mounts(namespace: str, service: dict[str, Any], model: dict[str, Any]) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for volume in service.get("volumes") or []:
        mount: dict[str, Any] = {"Type": volume["type"], "Target": volume["target"],
                                 "ReadOnly": bool(volume.get("read_only"))}
        if volume["type"] == "volume":
            top = (model.get("volumes") or {}).get(volume.get("source") or "") or {}
            if volume.get("source"):
                mount["Source"] = top.get("name") or f"{namespace}_{volume['source']}"
            options: dict[str, Any] = {"Labels": {**(top.get("labels") or {}), NAMESPACE_LABEL: namespace},
                                       "NoCopy": bool((volume.get("volume") or {}).get("nocopy"))}
            if top.get("driver"):
                options["DriverConfig"] = {"Name": top["driver"], "Options": top.get("driver_opts") or {}}
            mount["VolumeOptions"] = options
        elif volume["type"] == "bind":
            mount["Source"] = volume["source"]
            if (volume.get("bind") or {}).get("propagation"):
                mount["BindOptions"] = {"Propagation": volume["bind"]["propagation"]}
        else:
            size = (volume.get("tmpfs") or {}).get("size")
            if size:
                mount["TmpfsOptions"] = {"SizeBytes": int(size)}
        mounts.append(mount)
    return mounts


def _ports(service: dict[str, Any]) -> list[dict[str, Any]]:
    ports = []
    for port in service.get("ports") or []:
        entry: dict[str, Any] = {"Protocol": port.get("protocol") or "tcp", "TargetPort": int(port["target"]),
                                 "PublishMode": port.get("mode") or "ingress"}
        if port.get("published") not in (None, ""):
            entry["PublishedPort"] = int(port["published"])
        ports.append(entry)
    return ports


def _resources(service: dict[str, Any]) -> dict[str, Any] | None:
    conf = (service.get("deploy") or {}).get("resources") or {}
    out: dict[str, Any] = {}
    for kind, api in (("limits", "Limits"), ("reservations", "Reservations")):
        part = conf.get(kind) or {}
        values: dict[str, Any] = {}
        if part.get("cpus") not in (None, ""):
            values["NanoCPUs"] = int(float(part["cpus"]) * 10**9)
        if part.get("memory") not in (None, ""):
            values["MemoryBytes"] = int(part["memory"])
        if part.get("pids") not in (None, "") and kind == "limits":
            values["Pids"] = int(part["pids"])
        if values:
            out[api] = values
    return out or None


def service_spec(
    namespace: str, key: str, model: dict[str, Any], *, labels: dict[str, str],
    secrets: dict[str, tuple[str, str]],
) -> ServiceSpec:
    """The Swarm spec of one compose service; `secrets` maps a secret key to its (id, engine name)."""
    service = model["services"][key]
    deploy = service.get("deploy") or {}
    stack_label = {NAMESPACE_LABEL: namespace}
    env = [f"{k}={v}" for k, v in sorted((service.get("environment") or {}).items()) if v is not None]
    container: dict[str, Any] = {
        "Image": service["image"], "Labels": {**(service.get("labels") or {}), **stack_label},
        "Env": env, "Mounts": _mounts(namespace, service, model),
    }
    if service.get("entrypoint") is not None:
        container["Command"] = list(service["entrypoint"])
    if service.get("command") is not None:
        container["Args"] = list(service["command"])
    for compose_key, api in (("working_dir", "Dir"), ("user", "User"), ("hostname", "Hostname"),
                             ("stop_signal", "StopSignal"), ("tty", "TTY"), ("stdin_open", "OpenStdin"),
                             ("read_only", "ReadOnly"), ("init", "Init")):
        if service.get(compose_key) is not None:
            container[api] = service[compose_key]
    if service.get("stop_grace_period") is not None:
        container["StopGracePeriod"] = duration_ns(service["stop_grace_period"])
    health = _healthcheck(service.get("healthcheck"))
    if health:
        container["Healthcheck"] = health
    hosts = service.get("extra_hosts") or {}
    if hosts:
        pairs = hosts.items() if isinstance(hosts, dict) else (h.split(":", 1) for h in hosts)
        container["Hosts"] = [f"{ip} {host}" for host, ip in pairs]
    if service.get("dns") or service.get("dns_search"):
        container["DNSConfig"] = {"Nameservers": service.get("dns") or [], "Search": service.get("dns_search") or []}
    for compose_key, api in (("cap_add", "CapabilityAdd"), ("cap_drop", "CapabilityDrop"), ("group_add", "Groups")):
        if service.get(compose_key):
            container[api] = [str(item) for item in service[compose_key]]
    if service.get("sysctls"):
        container["Sysctls"] = {str(k): str(v) for k, v in service["sysctls"].items()}
    container["Secrets"] = [
        {"SecretID": secrets[entry["source"]][0], "SecretName": secrets[entry["source"]][1],
         "File": {"Name": secret_file(entry.get("target"), entry["source"]),
                  "UID": str(entry.get("uid") or "0"), "GID": str(entry.get("gid") or "0"),
                  "Mode": file_mode(entry.get("mode"))}}
        for entry in service.get("secrets") or []
    ]
    networks = service.get("networks") or {"default": None}
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Networks": [
            {"Target": network_name(namespace, net, model), "Aliases": [key, *((conf or {}).get("aliases") or [])]}
            for net, conf in sorted(networks.items())
        ],
    }
    restart = _restart_policy(service)
    if restart:
        task["RestartPolicy"] = restart
    resources = _resources(service)
    if resources:
        task["Resources"] = resources
    placement = deploy.get("placement") or {}
    if placement:
        task["Placement"] = {
            "Constraints": placement.get("constraints") or [],
            "Preferences": [{"Spread": {"SpreadDescriptor": p["spread"]}} for p in placement.get("preferences") or []],
            **({"MaxReplicas": placement["max_replicas_per_node"]} if placement.get("max_replicas_per_node") else {}),
        }
    logging_conf = service.get("logging") or {}
    if logging_conf.get("driver"):
        task["LogDriver"] = {"Name": logging_conf["driver"], "Options": logging_conf.get("options") or {}}
    if deploy.get("mode") == "global":
        mode: dict[str, Any] = {"Global": {}}
    else:
        mode = {"Replicated": {"Replicas": int(deploy.get("replicas", 1))}}
    return ServiceSpec(
        name=f"{namespace}_{key}", task_template=task,
        labels={**(deploy.get("labels") or {}), **labels, IMAGE_LABEL: service["image"], **stack_label},
        mode=mode,
        endpoint_spec={"Mode": deploy.get("endpoint_mode") or "vip", "Ports": _ports(service)},
        update_config=_update_config(deploy.get("update_config")),
        rollback_config=_update_config(deploy.get("rollback_config")),
    )
