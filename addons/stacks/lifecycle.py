"""Stack lifecycle: stop, start, restart and down of a deployed stack's containers, and orphaned stacks.

These act on the containers of the stack's compose project through the engine (docker SDK), not on
its files: they work the same for a stack whose folder left git, and need no secrets. `down` removes
the project's containers and networks, never a volume, and never the working folder.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import docker

from addons.repos.contract import REPOS
from appliance.errors import Conflict

from . import swarmstage
from .compose import PROJECT_LABEL, SERVICE_LABEL

if TYPE_CHECKING:
    from appliance.runs import Run

    from .engine import StackEngine
    from .models import DeployRequest, StackSpec

_LOGGER = logging.getLogger(__name__)

ACTIONS = ("stop", "start", "restart", "down")
DEFAULT_HEALTH_TIMEOUT = 120.0


def _containers(client: docker.DockerClient, project: str) -> list[Any]:
    """A project's containers, stopped ones included; blocks."""
    return list(client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}))


def _act(client: docker.DockerClient, project: str, action: str) -> list[str]:
    """Carry out `action` on every container of the project; returns their names; blocks."""
    containers = _containers(client, project)
    for container in containers:
        if action == "stop":
            container.stop()  # the container's own stop timeout (compose's stop_grace_period)
        elif action == "start":
            container.start()
        elif action == "restart":
            container.restart()
        elif action == "down":
            container.stop()
            container.remove()
    if action == "down":
        for network in client.networks.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
            try:
                network.remove()
            except docker.errors.APIError as err:  # still used by a container of another project
                _LOGGER.warning("Network %s of project %s stays: %s", network.name, project, err)
    return [c.name for c in containers]


def take_down(client: docker.DockerClient, project: str, mode: str | None = "compose") -> list[str]:
    """Remove a project's containers and networks (never a volume); returns what was removed; blocks."""
    if mode == "swarm":
        return swarmstage.remove(client, project)
    return _act(client, project, "down")


class Lifecycle:
    """Runs stop/start/restart/down requests that the engine queued (one flight per stack)."""

    def __init__(self, engine: StackEngine) -> None:
        """Bind the engine whose stacks are acted on."""
        self.engine = engine
        self.app = engine.app

    async def async_execute(self, req: DeployRequest) -> None:
        """Run one lifecycle request under its run."""
        run = req.run
        try:
            async with self.app.runs.track(run.kind, req.stack, trigger=req.trigger, reason=run.reason, run=run):
                await self._async_act(req.kind, req.stack, run)
        except Exception:
            _LOGGER.debug("Stack %s: %s run %s failed", req.stack, req.kind, run.id, exc_info=True)

    async def _async_act(self, action: str, name: str, run: Run) -> None:
        state = self.engine.states.get(name)
        project = state.project or f"dm-{name}"
        assert self.engine.deployer is not None
        client = await self.engine.deployer.placement.async_client(self.engine.running_engine(name))
        if state.mode == "swarm":
            await self._async_act_swarm(action, name, client, project, run)
            return
        found = await self.app.async_run_blocking(_containers, client, project)
        if not found and action != "down":
            raise Conflict(f"{name} has no containers (compose project {project}); deploy it first")
        run.log(f"{action}: compose project {project}, {len(found)} container(s)")
        names = await self.app.async_run_blocking(_act, client, project, action)
        for item in names:
            run.log(f"{action}: {item}")
        if action in ("stop", "down"):
            state.desired = "stopped" if action == "stop" else "down"
            state.health = state.desired
            state.drift = None
            await self.engine.states.async_save(state)
            run.log(f"{name} is {state.desired}; automatic deploys and drift healing wait until it is started "
                    "or deployed by hand" + ("; its volumes and working folder are kept" if action == "down" else ""))
            return
        state.desired = "running"
        services = sorted(state.config_hashes) or sorted(
            {c.labels.get(SERVICE_LABEL, "") for c in found} - {""})
        spec = self.engine.specs().get(name)
        timeout = spec.health_timeout if spec else DEFAULT_HEALTH_TIMEOUT
        problem = await self.engine.deployer.gate.async_wait(client, project, services, timeout, run.log)
        state.health = "unhealthy" if problem else "healthy"
        await self.engine.states.async_save(state)
        if problem:
            raise Conflict(f"{name} did not come up healthy after {action}: {problem}")
        run.log(f"{name} is healthy")


    async def _async_act_swarm(self, action: str, name: str, client: Any, project: str, run: Run) -> None:
        """A Swarm stack: `down` removes it (volumes stay); Swarm itself restarts and reschedules tasks."""
        if action != "down":
            raise Conflict(f"{name} is a Swarm stack: Swarm keeps its tasks running, so {action} does not apply; "
                           "deploy it again, or take it down")
        removed = await self.app.async_run_blocking(swarmstage.remove, client, project)
        run.log(f"down: removed Swarm services {', '.join(removed) or 'none'} (volumes stay)")
        state = self.engine.states.get(name)
        state.desired = state.health = "down"
        state.drift = None
        await self.engine.states.async_save(state)


class Orphans:
    """Stacks that still run but whose folder left git, or whose entry left the config."""

    def __init__(self, engine: StackEngine) -> None:
        """Bind the engine; nothing is orphaned until a sync or the start says so."""
        self.engine = engine
        self.app = engine.app
        self.gone: dict[str, str] = {}  # stack -> why (its folder left git)

    def all(self) -> dict[str, str]:
        """Orphaned stacks with why: configured ones whose folder left git, and unconfigured ones not taken down."""
        specs = self.engine.specs()
        out = {}
        for name, state in self.engine.states.states.items():
            if not state.project or not state.deployed_revision or name in self.engine.clashes:
                continue
            if name in self.gone and name in specs:
                out[name] = self.gone[name]  # still configured: listed, whatever it runs
            elif state.desired != "down" and name not in specs:
                out[name] = self.gone.get(name, "it is no longer in the config")
        return dict(sorted(out.items()))

    def known(self, name: str) -> bool:
        """True for a configured stack and for an orphan (lifecycle actions work on both)."""
        return name in self.engine.specs() or name in self.all()

    async def async_check(self, spec: StackSpec, revision: str, changed_under: list[str], *, trigger: str) -> bool:
        """True when the stack's folder is gone at `revision` (then it is orphaned, and nothing deploys it)."""
        state = self.engine.states.get(spec.name)
        if not state.deployed_revision:
            return False  # never deployed: a missing folder is the deploy's own error
        repo = self.app.data[REPOS].get(spec.repo)
        if spec.name not in self.gone and not changed_under:
            return False  # no commit touched the folder since the deploy, so it is still there
        if await repo.async_has_path(revision, spec.path):
            if self.gone.pop(spec.name, None):
                _LOGGER.info("Stack %s: its folder is back in git", spec.name)
            return False
        if spec.name not in self.gone:
            await self.async_orphan(spec, f"its folder {spec.path} is gone from {spec.repo} at {revision[:7]}",
                                    trigger=trigger)
        return True

    async def async_orphan(self, spec: StackSpec, why: str, *, trigger: str) -> None:
        """Mark a stack orphaned; with `on_remove: down` queue taking it down (volumes and folder stay)."""
        self.gone[spec.name] = why
        _LOGGER.warning("Stack %s is orphaned: %s", spec.name, why)
        state = self.engine.states.get(spec.name)
        if spec.on_remove == "down" and state.desired != "down" and state.project:
            await self.engine.async_request("down", spec.name, revision=None, trigger=trigger,
                                            reason=f"{spec.name} is orphaned ({why}); on_remove: down")

    async def async_startup(self) -> None:
        """At start: stacks that left the config follow `settings.on_remove` once every discovery ran."""
        discovering = {d["repo"] for d in self.engine.conf["discover"]}
        if not discovering <= set(self.engine.discovered):
            return  # a discovered stack might look removed before its repo was read
        if self.engine.settings["on_remove"] != "down":
            return
        for name, why in self.all().items():
            if name not in self.engine.specs() and name not in self.gone:
                await self.engine.async_request("down", name, revision=None, trigger="startup",
                                                reason=f"{name} is orphaned ({why}); settings.on_remove: down")
