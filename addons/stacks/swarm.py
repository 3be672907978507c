"""Swarm stacks with the docker SDK alone: deploy a compose model, wait for convergence, remove.

What `docker stack deploy --prune` does, without the docker CLI: overlay networks, services and
secrets carry the stack's namespace label; services are updated in place (Swarm rolls them);
services gone from the model are removed. SOPS values become Swarm secrets named
`<namespace>_<key>_<sha256[:10]>`, so a changed value is a new secret and the old one is removed
only after the new spec converged. Every function here blocks (docker SDK): run it in an executor.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from appliance.errors import DockmasterError, ValidationFailed

from .swarm_spec import NAMESPACE_LABEL, check_supported, network_name, network_spec, service_spec

_LOGGER = logging.getLogger(__name__)

SECRET_KEY_LABEL = "io.dockmaster.secret"  # noqa: S105 - a label name, not a value
CONVERGE_TIMEOUT = 300.0
FAILED_TASK = {"failed", "rejected"}
UPDATE_FAILED = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}


class SwarmError(DockmasterError):
    """The Swarm engine refused a change; the message carries the engine's words."""

    status = 502
    code = "swarm_failed"


@dataclass
class ServiceProgress:
    """Where one service stands: tasks running at its current spec out of the desired count."""

    name: str
    desired: int
    running: int = 0
    update: str = ""  # Swarm's UpdateStatus.State of the update this deploy started ("" if none)
    error: str = ""

    def describe(self) -> str:
        """`web 1/2 running (updating)`."""
        text = f"{self.name} {self.running}/{self.desired} running"
        return f"{text} ({self.update})" if self.update else text


@dataclass
class Convergence:
    """The health gate's answer: every service converged, or the first failure in Swarm's words."""

    ok: bool
    services: list[ServiceProgress]
    error: str = ""


@dataclass
class _Watch:
    service_id: str
    name: str
    before_tasks: set[str]
    before_update: str  # UpdateStatus.StartedAt before this deploy ("" if none)
    rolling: bool  # the task template changed: Swarm rolls the service


@dataclass
class Deployment:
    """What `apply_stack` changed, for `wait_converged` and the secret pruning after it."""

    namespace: str
    watches: list[_Watch] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)  # engine names of the secrets this revision uses
    networks: set[str] = field(default_factory=set)
    removed: list[str] = field(default_factory=list)  # services pruned (no longer in the model)


def secret_name(namespace: str, key: str, content: bytes) -> str:
    """A secret's versioned engine name: `<namespace>_<key>_<sha256(content)[:10]>`."""
    return f"{namespace}_{key}_{hashlib.sha256(content).hexdigest()[:10]}"


def _stack_filter(namespace: str) -> dict[str, Any]:
    return {"label": f"{NAMESPACE_LABEL}={namespace}"}


def _api(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except docker.errors.APIError as err:
        raise SwarmError(str(err.explanation or err)) from err


def _secret_contents(model: dict[str, Any], values: dict[str, bytes]) -> dict[str, bytes | None]:
    """Each used secret key → its content (None for an external secret); raises when one has none."""
    used = {entry["source"] for service in (model.get("services") or {}).values()
            for entry in service.get("secrets") or []}
    declared = model.get("secrets") or {}
    contents: dict[str, bytes | None] = {}
    for key in sorted(used):
        conf = declared.get(key) or {}
        if key in values:
            contents[key] = values[key]
        elif conf.get("external"):
            contents[key] = None
        elif conf.get("file"):
            try:
                contents[key] = Path(conf["file"]).read_bytes()
            except OSError as err:
                raise ValidationFailed(f"secret {key}: cannot read {conf['file']}: {err.strerror}") from None
        else:
            raise ValidationFailed(f"secret {key}: no value (not a SOPS value, no file, not external)")
    return contents


def _plan_networks(
    client: docker.DockerClient, namespace: str, model: dict[str, Any]
) -> dict[str, tuple[str, bool]]:
    """Key → (engine name, whether to create it) for every network a service joins; external ones must exist."""
    services = (model.get("services") or {}).values()
    used = {net for service in services for net in (service.get("networks") or {"default": None})}
    existing = {n["Name"] for n in _api(client.api.networks)}
    plan: dict[str, tuple[str, bool]] = {}
    for key in sorted(used):
        name = network_name(namespace, key, model)
        external = ((model.get("networks") or {}).get(key) or {}).get("external")
        if external and name not in existing:
            raise ValidationFailed(f"network {key}: external network {name} does not exist on the engine")
        plan[key] = (name, not external and name not in existing)
    return plan


def _ensure_secrets(client: docker.DockerClient, namespace: str,
                    contents: dict[str, bytes | None], model: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Create the versioned secrets that do not exist yet; returns key → (id, engine name)."""
    existing = {s["Spec"]["Name"]: s["ID"] for s in _api(client.api.secrets)}
    refs: dict[str, tuple[str, str]] = {}
    for key, content in contents.items():
        if content is None:
            name = str(((model.get("secrets") or {}).get(key) or {}).get("name") or key)
            if name not in existing:
                raise ValidationFailed(f"secret {key}: external secret {name} does not exist on the engine")
        else:
            name = secret_name(namespace, key, content)
            if name not in existing:
                labels = {NAMESPACE_LABEL: namespace, SECRET_KEY_LABEL: key}
                existing[name] = _api(client.api.create_secret, name, content, labels=labels)["ID"]
        refs[key] = (existing[name], name)
    return refs


def apply_stack(
    client: docker.DockerClient, namespace: str, model: dict[str, Any], *,
    secrets: dict[str, bytes] | None = None, labels: dict[str, str] | None = None,
) -> Deployment:
    """Create or update the stack's networks, secrets and services, and remove services gone from the model.

    Refuses (SwarmUnsupported) before any change when the model cannot run in Swarm. Blocks.
    """
    check_supported(model)
    contents = _secret_contents(model, secrets or {})
    network_plan = _plan_networks(client, namespace, model)
    services = {s["Spec"]["Name"]: s for s in _api(client.api.services, filters=_stack_filter(namespace))}
    wanted = {f"{namespace}_{key}" for key in model.get("services") or {}}
    deployment = Deployment(namespace, networks={name for name, _ in network_plan.values()})
    for key, (name, create) in network_plan.items():
        if create:
            _api(client.networks.create, name, **network_spec(namespace, key, model))
    refs = _ensure_secrets(client, namespace, contents, model)
    deployment.secrets = {name for _, name in refs.values()}
    for name in sorted(set(services) - wanted):
        _LOGGER.info("Removing service %s (no longer in the stack)", name)
        with contextlib.suppress(docker.errors.NotFound):
            _api(client.api.remove_service, services[name]["ID"])
        deployment.removed.append(name)
    for key in sorted(model.get("services") or {}):
        spec = service_spec(namespace, key, model, labels=labels or {}, secrets=refs)
        current = services.get(spec.name)
        if current is None:
            created = _api(client.api.create_service, **spec.kwargs())
            deployment.watches.append(_Watch(created["ID"], spec.name, set(), "", rolling=False))
            continue
        before_tasks = {t["ID"] for t in _api(client.api.tasks, filters={"service": current["ID"]})}
        before_update = str((current.get("UpdateStatus") or {}).get("StartedAt") or "")
        _api(client.api.update_service, current["ID"], current["Version"]["Index"], **spec.kwargs())
        after = _api(client.api.inspect_service, current["ID"])
        rolling = after["Spec"]["TaskTemplate"] != current["Spec"]["TaskTemplate"]
        deployment.watches.append(_Watch(current["ID"], spec.name, before_tasks, before_update, rolling))
    return deployment


def _desired(client: docker.DockerClient, service: dict[str, Any]) -> int:
    mode = service["Spec"]["Mode"]
    if "Global" in mode:
        nodes = _api(client.api.nodes)
        return sum(1 for n in nodes if n["Status"]["State"] == "ready" and n["Spec"].get("Availability") == "active")
    return int(mode.get("Replicated", {}).get("Replicas", 1))


def _task_error(tasks: list[dict[str, Any]]) -> str:
    """The newest failed task's own words (`Status.Err`, else its message)."""
    failed = sorted((t for t in tasks if t["Status"]["State"] in FAILED_TASK),
                    key=lambda t: t["Status"].get("Timestamp", ""), reverse=True)
    if not failed:
        return ""
    status = failed[0]["Status"]
    return str(status.get("Err") or status.get("Message") or status["State"])


def _at_spec(task: dict[str, Any], template: dict[str, Any]) -> bool:
    """Whether a task runs the service's task template (the engine leaves `Runtime` out of a task's copy)."""
    def bare(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k != "Runtime" and v not in (None, {}, [])}

    return bare(task.get("Spec") or {}) == bare(template)


def _progress(client: docker.DockerClient, watch: _Watch) -> ServiceProgress:
    """One look at a service: running tasks at its spec, this deploy's update state, a failure."""
    service = _api(client.api.inspect_service, watch.service_id)
    template = service["Spec"]["TaskTemplate"]
    tasks = _api(client.api.tasks, filters={"service": watch.service_id})
    progress = ServiceProgress(watch.name, _desired(client, service))
    status = service.get("UpdateStatus") or {}
    ours = watch.rolling and str(status.get("StartedAt") or "") not in ("", watch.before_update)
    if ours:
        progress.update = str(status.get("State") or "")
    new = [t for t in tasks if t["ID"] not in watch.before_tasks and _at_spec(t, template)]
    if progress.update in UPDATE_FAILED:
        reason = _task_error(new) or _task_error(tasks)
        progress.error = f"update {progress.update}: {status.get('Message', '')}" + (f": {reason}" if reason else "")
        return progress
    failed = _task_error(new)
    if failed:
        progress.error = f"task failed: {failed}"
        return progress
    live = [t for t in tasks if t["DesiredState"] == "running"]
    progress.running = sum(1 for t in live if t["Status"]["State"] == "running" and _at_spec(t, template))
    if watch.rolling and not ours:
        progress.update = "pending"  # Swarm has not started rolling this deploy's spec yet
    elif progress.running == progress.desired and len(live) != progress.desired:
        progress.update = progress.update or "settling"  # old tasks are still shutting down
    return progress


def _converged(progress: ServiceProgress) -> bool:
    return not progress.error and progress.running == progress.desired and progress.update in ("", "completed")


def wait_converged(client: docker.DockerClient, deployment: Deployment, *,
                   timeout: float = CONVERGE_TIMEOUT, poll: float = 0.5) -> Convergence:
    """Wait until every service runs its desired tasks at the new spec (healthy: Swarm reports a task
    with a healthcheck as running only once it is healthy), or until the first failure: the update's
    own (paused, rolled back) or a new task's, in Swarm's words. Blocks up to `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = [_progress(client, watch) for watch in deployment.watches]
        failed = [p for p in states if p.error]
        if failed:
            return Convergence(False, states, "; ".join(f"{p.name}: {p.error}" for p in failed))
        if all(_converged(p) for p in states):
            return Convergence(True, states)
        if time.monotonic() >= deadline:
            waiting = ", ".join(p.describe() for p in states if not _converged(p))
            return Convergence(False, states, f"not converged within {timeout:.0f}s: {waiting}")
        time.sleep(poll)


def prune_secrets(client: docker.DockerClient, namespace: str, keep: set[str]) -> list[str]:
    """Remove the stack's secrets that are not in `keep` (an old version still in use stays); blocks."""
    removed = []
    for secret in _api(client.api.secrets, filters=_stack_filter(namespace)):
        name = secret["Spec"]["Name"]
        if name in keep:
            continue
        try:
            client.api.remove_secret(secret["ID"])
            removed.append(name)
        except docker.errors.APIError as err:
            _LOGGER.warning("Secret %s not removed: %s", name, err.explanation or err)
    return removed


def prune_networks(client: docker.DockerClient, namespace: str, keep: set[str]) -> list[str]:
    """Remove the stack's networks that no service of this revision joins (in use: left alone); blocks."""
    removed = []
    for network in _api(client.api.networks, filters=_stack_filter(namespace)):
        if network["Name"] in keep:
            continue
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_network(network["Id"])
            removed.append(network["Name"])
    return removed


def deploy_stack(
    client: docker.DockerClient, namespace: str, model: dict[str, Any], *,
    secrets: dict[str, bytes] | None = None, labels: dict[str, str] | None = None,
    timeout: float = CONVERGE_TIMEOUT, poll: float = 0.5,
) -> Convergence:
    """Apply the model, wait for convergence, and after success remove old secret versions and
    networks the stack no longer uses (after a failure they stay, for the previous revision). Blocks.
    """
    deployment = apply_stack(client, namespace, model, secrets=secrets, labels=labels)
    result = wait_converged(client, deployment, timeout=timeout, poll=poll)
    if result.ok:
        prune_secrets(client, namespace, deployment.secrets)
        prune_networks(client, namespace, deployment.networks)
    return result


def remove_stack(client: docker.DockerClient, namespace: str, *, timeout: float = 120.0) -> None:
    """Remove the stack's services, then (once their tasks are gone) its networks and secrets.

    Volumes stay, as with `docker stack rm`. Blocks up to `timeout` seconds.
    """
    stack = _stack_filter(namespace)
    ids = [s["ID"] for s in _api(client.api.services, filters=stack)]
    for service_id in ids:
        with contextlib.suppress(docker.errors.NotFound):
            _api(client.api.remove_service, service_id)
    deadline = time.monotonic() + timeout
    while True:
        left = _api(client.api.networks, filters=stack) + _api(client.api.secrets, filters=stack)
        for item in left:
            with contextlib.suppress(docker.errors.APIError):
                if "Spec" in item:
                    client.api.remove_secret(item["ID"])
                else:
                    client.api.remove_network(item["Id"])
        containers = _api(client.api.containers, all=True, filters={"label": f"{NAMESPACE_LABEL}={namespace}"})
        if not containers and not (_api(client.api.networks, filters=stack) + _api(client.api.secrets, filters=stack)):
            return
        if time.monotonic() >= deadline:
            raise SwarmError(f"stack {namespace} not fully removed within {timeout:.0f}s")
        time.sleep(0.3)
