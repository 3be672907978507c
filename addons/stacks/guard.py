"""Before compose touches a container: the working-folder rule and the deploy policy, and how a refusal is reported."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ValidationFailed
from appliance.runs import Run

from . import containment, policy
from .compose import ComposeCall
from .events import PolicyViolation
from .models import StackSpec

if TYPE_CHECKING:
    from .deployer import Deployer

_LOGGER = logging.getLogger(__name__)


class PolicyRefused(ValidationFailed):
    """A run refused by the stack's policy or the working-folder rule; every violation is listed."""

    code = "policy_violation"

    def __init__(self, violations: list[policy.Violation], *, dry_run: bool = False) -> None:
        """Keep the violations; the message lists them all."""
        count = f"{len(violations)} violation{'s' if len(violations) != 1 else ''}"
        verb = "would be refused" if dry_run else "refused"
        super().__init__(f"{verb} before any container was touched ({count}): "
                         + "; ".join(str(v) for v in violations))
        self.violations = violations


def stack_policy(settings: dict[str, Any], spec: StackSpec) -> policy.Policy:
    """The effective policy of a stack from the addon settings and its own `policy:`."""
    return policy.effective(settings.get("policy"), spec.policy)


def _socket_paths() -> tuple[str, ...]:
    host = os.environ.get("DOCKER_HOST", "")
    engine = (host.removeprefix("unix://"),) if host.startswith("unix://") else ()
    return (*policy.SOCKET_PATHS, *engine)


async def async_places(deployer: Deployer, root: Path) -> policy.Places:
    """The folders a bind is judged by: `root` is the stack's own; Dockmaster's folders as it and the host see them."""
    app = deployer.app
    config_dir, data_dir = app.config_path.parent, app.data_dir
    folders = {str(config_dir), str(data_dir)}
    try:
        host = await deployer.placement.async_host_paths()
    except Exception as err:  # no engine to ask: Dockmaster's own view still holds
        _LOGGER.debug("Stacks: host paths unknown for the policy: %s", err)
    else:
        on_host = host.to_host(str(data_dir))
        if on_host and on_host != str(data_dir):
            folders.add(on_host)
            if data_dir.parent == config_dir:
                folders.add(str(Path(on_host).parent))
    return policy.Places(own=root, dockmaster=tuple(sorted(folders)), sockets=_socket_paths())


async def async_source_violations(deployer: Deployer, call: ComposeCall) -> list[policy.Violation]:
    """What the stack's own compose files would make compose read outside its folder (before compose runs)."""
    found: list[policy.Violation] = await deployer.app.async_run_blocking(
        containment.scan_sources, call.root, list(call.files))
    return found


async def async_model_violations(deployer: Deployer, spec: StackSpec, call: ComposeCall, model: dict[str, Any],
                                 run: Run) -> list[policy.Violation]:
    """Paths and policy rules broken by a resolved model; logs the policy and what the check cost."""
    effective = stack_policy(deployer.settings, spec)
    places = await async_places(deployer, call.root)
    start = time.perf_counter()
    found: list[policy.Violation] = await deployer.app.async_run_blocking(check, model, effective, places)
    elapsed = (time.perf_counter() - start) * 1000
    run.log(f"policy {effective.describe()}: {len(model.get('services') or {})} service(s) checked in "
            f"{elapsed:.1f} ms")
    return found


def check(model: dict[str, Any], effective: policy.Policy, places: policy.Places) -> list[policy.Violation]:
    """The working-folder rule, then the policy, on one resolved model (blocks: resolves paths on disk)."""
    return [*containment.check_model(model, places.own), *policy.check(model, effective, places)]


def refuse(deployer: Deployer, spec: StackSpec, run: Run, violations: list[policy.Violation], *, revision: str,
           dry_run: bool = False) -> PolicyRefused:
    """Log and record every violation, fire `policy_violation` (not for a dry-run); returns the error to raise."""
    lines = [run.secrets(str(v)) for v in violations]
    run.log(f"{'would be refused' if dry_run else 'refused'}: {len(lines)} violation(s) of the deploy policy "
            "or the working-folder rule:")
    for line in lines:
        run.log(f"  - {line}")
    deployer.app.runs.update(run, details={"policy_violations": lines})
    if not dry_run:
        effective = stack_policy(deployer.settings, spec).describe()
        deployer.app.bus.async_fire(PolicyViolation(stack=spec.name, revision=revision, policy=effective,
                                                    violations=lines, run_id=run.id))
    return PolicyRefused(violations, dry_run=dry_run)


async def async_enforce_sources(deployer: Deployer, spec: StackSpec, call: ComposeCall, run: Run, *,
                                revision: str) -> None:
    """Refuse the run when the stack's files would make compose read outside its folder."""
    found = await async_source_violations(deployer, call)
    if found:
        raise refuse(deployer, spec, run, found, revision=revision)


async def async_enforce_model(deployer: Deployer, spec: StackSpec, call: ComposeCall, model: dict[str, Any],
                              run: Run, *, revision: str) -> None:
    """Refuse the run when the resolved model breaks the working-folder rule or the stack's policy."""
    found = await async_model_violations(deployer, spec, call, model, run)
    if found:
        raise refuse(deployer, spec, run, found, revision=revision)
