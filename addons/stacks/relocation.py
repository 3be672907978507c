"""Stacks and their engines over time: outages (stacks go `unknown`, then come back) and moves between engines."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

from addons.engines.contract import EngineRecovered, EngineUnreachable
from addons.repos.contract import Commit

from .deployer import DeployAborted
from .lifecycle import take_down

if TYPE_CHECKING:
    from .engine import StackEngine
    from .models import DeployRequest, StackSpec

_LOGGER = logging.getLogger(__name__)


class Relocation:
    """Follows engine outages for the stacks on them, and moves a stack to the engine its config names."""

    def __init__(self, engine: StackEngine) -> None:
        """Bind the stack engine."""
        self.engine = engine
        self.app = engine.app
        self._health_before: dict[str, str] = {}  # stacks made unknown by an outage: their health before it

    def _running_on(self, engine: str) -> list[str]:
        return [name for name, state in self.engine.states.states.items()
                if state.deployed_revision and self.engine.running_engine(name) == engine]

    async def async_on_unreachable(self, event: EngineUnreachable) -> None:
        """An engine stopped answering: its deployed stacks are `unknown` (not failed) until it is back."""
        for name in self._running_on(event.engine):
            state = self.engine.states.get(name)
            if state.health == "unknown" or state.desired != "running":
                continue
            self._health_before[name] = state.health
            state.health = "unknown"
            await self.engine.states.async_save(state)

    async def async_on_recovered(self, event: EngineRecovered) -> None:
        """An engine answers again: stacks get their health back (checked for drift) and cut deploys run again."""
        deployer = self.engine.deployer
        assert deployer is not None
        for name in self._running_on(event.engine):
            before = self._health_before.pop(name, None)
            state = self.engine.states.get(name)
            if before is not None and state.health == "unknown":
                state.health = before
                await self.engine.states.async_save(state)
        for name, revision in list(deployer.interrupted.items()):
            spec = self.engine.specs().get(name)
            if spec is None or event.engine not in (self.engine.running_engine(name), spec.engine):
                continue
            deployer.interrupted.pop(name, None)
            if not self.engine.auto_deploy(name):
                continue
            await self.engine.async_request(
                "deploy", name, revision=revision, trigger="drift", auto=True,
                reason=f"engine {event.engine} answers again; deploying {revision[:7]}, which its outage cut short")
        if self.engine.drift is not None:
            for name in self._running_on(event.engine):
                await self.engine.drift.async_check(name)

    async def async_move(self, req: DeployRequest, spec: StackSpec, commit: Commit) -> None:
        """Deploy the running revision on the configured engine, then take the stack down where it ran.

        A move that fails leaves the stack where it was: what it started on the new engine is removed
        and the state is as before.
        """
        deployer = self.engine.deployer
        assert deployer is not None
        run = req.run
        old = self.engine.running_engine(spec.name)
        state = self.engine.states.get(spec.name)
        before = copy.deepcopy(state)
        was_bad = commit.sha in state.bad
        run.log(f"moving {spec.name} from engine {old} to engine {spec.engine} at {commit.short}")
        try:
            await deployer.async_deploy(req, spec, commit, moving=True)
        except DeployAborted as err:
            if err.touched:
                client = await deployer.placement.async_client(spec.engine)
                removed = await self.app.async_run_blocking(take_down, client, state.project or f"dm-{spec.name}",
                                                            spec.mode)
                run.log(f"the move failed: removed what it started on {spec.engine} "
                        f"({', '.join(removed) or 'nothing'})")
            self.engine.states.states[spec.name] = before
            if not was_bad:
                await self.engine.states.async_clear_bad(before, commit.sha)
            await self.engine.states.async_save(before)
            run.log(f"{spec.name} stays on engine {old}")
            raise DeployAborted(err.message, revision=err.revision, touched=False, blames_revision=False) from err
        try:
            client = await deployer.placement.async_client(old)
            removed = await self.app.async_run_blocking(take_down, client, before.project or f"dm-{spec.name}",
                                                        before.mode)
        except Exception as err:  # the old engine is away: say what is left there
            run.log(f"{spec.name} runs on {spec.engine} now, but it could not be taken down on {old} ({err}); "
                    f"take compose project {before.project} down there by hand")
            _LOGGER.warning("Stack %s moved to %s; its old containers on %s remain: %s", spec.name, spec.engine,
                            old, err)
            return
        run.log(f"{spec.name} runs on engine {spec.engine}; taken down on {old}: {', '.join(removed) or 'nothing'} "
                "(volumes stay on that engine)")
