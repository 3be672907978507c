"""A stack with `mode: swarm`: its resolved compose model, SOPS values as Swarm secrets, and the deploy itself.

Compose still validates and resolves the files (`compose config`) and the deploy policy judges the
result, exactly as for a compose stack. Then, instead of `compose up`, the model goes to the Swarm
manager through the Docker API (`swarm.py`), and convergence is the health gate.

A secret gets its value from SOPS in one of two ways:
- `environment: NAME` naming a value of the stack's SOPS file (or `env:`);
- `file: ./x` naming a file listed under the stack's `sops:` (its decrypted copy is read).
The values travel to the engine as Swarm secrets and are never written to the working folder.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ValidationFailed

from . import swarm
from .compose import LABEL_MANAGED, LABEL_REVISION, LABEL_STACK
from .swarm_spec import NAMESPACE_LABEL, check_supported

if TYPE_CHECKING:
    from appliance.core import Appliance
    from appliance.runs import Run


@dataclass
class SwarmInput:
    """What a Swarm deploy sends: the model (binds mapped, secrets resolved), secret values, labels."""

    model: dict[str, Any]
    secrets: dict[str, bytes] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def prepare(model: dict[str, Any], *, env: dict[str, str], decrypted: dict[str, Path], root: Path, stack: str,
            revision: str) -> SwarmInput:
    """Resolve secret values and check the model can run in Swarm; raises before anything changes (blocks)."""
    model = copy.deepcopy(model)
    values: dict[str, bytes] = {}
    for key, conf in (model.get("secrets") or {}).items():
        variable = conf.get("environment")
        if variable:
            if variable not in env:
                raise ValidationFailed(f"secret {key}: environment {variable} is not a SOPS value or env of the stack")
            values[key] = env[variable].encode()
            conf.pop("environment")
            continue
        source = conf.get("file")
        if source:
            try:
                rel = Path(source).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue  # outside the folder: the deploy policy has judged it already
            if rel in decrypted:
                values[key] = decrypted[rel].read_bytes()
    check_supported(model)
    labels = {LABEL_MANAGED: "true", LABEL_STACK: stack, LABEL_REVISION: revision}
    return SwarmInput(model, values, labels)


def require_manager(client: Any, engine: str) -> None:
    """Refuse an engine that is not a Swarm manager (blocks: docker SDK)."""
    info = client.info().get("Swarm") or {}
    if info.get("LocalNodeState") != "active" or not info.get("ControlAvailable"):
        raise ValidationFailed(f"engine {engine} is not a Swarm manager (its swarm state is "
                               f"{info.get('LocalNodeState') or 'unknown'}); `mode: swarm` needs one")


async def async_deploy(app: Appliance, client: Any, project: str, staged: SwarmInput, *,
                       timeout: float,  # noqa: ASYNC109 - the health gate of the stack (health_timeout)
                       run: Run) -> str | None:
    """Apply the stack and wait for convergence; None when converged, else why not in Swarm's words."""
    result = await app.async_run_blocking(functools.partial(
        swarm.deploy_stack, client, project, staged.model, secrets=staged.secrets, labels=staged.labels,
        timeout=timeout))
    for service in result.services:
        run.log(f"swarm: {service.describe()}")
    return None if result.ok else result.error


def remove(client: Any, project: str) -> list[str]:
    """Remove a Swarm stack's services, networks and secrets (volumes stay); returns the service names; blocks."""
    names = [s["Spec"]["Name"] for s in client.api.services(filters={"label": f"{NAMESPACE_LABEL}={project}"})]
    swarm.remove_stack(client, project)
    return names
