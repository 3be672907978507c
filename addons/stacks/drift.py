"""Drift: a deployed stack whose containers stopped, vanished or run another config is reported and healed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .events import DriftDetected
from .health import drift_of, list_project

if TYPE_CHECKING:
    from .engine import StackEngine

_LOGGER = logging.getLogger(__name__)


class DriftWatcher:
    """Compares what runs with the last deploy (docker SDK labels) and asks for a healing deploy."""

    def __init__(self, engine: StackEngine) -> None:
        """Bind the engine whose stacks are watched."""
        self.engine = engine
        self.app = engine.app

    async def async_check_all(self) -> dict[str, list[str]]:
        """Check every deployed stack; returns the problems per drifting stack."""
        found = {}
        for name in self.engine.specs():
            if name in self.engine.orphans.gone:
                continue
            problems = await self.async_check(name)
            if problems:
                found[name] = problems
        return found

    async def async_check(self, name: str, *, heal: bool = True) -> list[str]:
        """Check one stack; fires DriftDetected and queues a `drift` deploy when auto_deploy is on."""
        state = self.engine.states.get(name)
        if not state.deployed_revision or not state.project or not state.config_hashes or state.desired != "running":
            return []  # not deployed yet, or stopped by a person
        key = f"stack:{name}"
        if self.app.scheduler.busy(key):
            return []  # a deploy in flight changes containers on purpose
        revision = state.deployed_revision
        engine = self.engine.running_engine(name)
        if self.engine.engine_down(engine):
            return []  # its stacks are unknown until the engine answers again
        try:
            client = await self.app.engines.async_docker(engine)
            views = await self.app.async_run_blocking(list_project, client, state.project)
        except Exception as err:  # the engine went away since its last check: that is not drift
            _LOGGER.warning("Stack %s: cannot read its containers on engine %s: %s", name, engine, err)
            return []
        if self.app.scheduler.busy(key) or state.deployed_revision != revision:
            # A deploy started while the containers were listed: what was seen is its work, and a
            # "healing" deploy of the old revision queued behind it would undo it.
            return []
        problems = drift_of(views, state.config_hashes)
        text = "; ".join(problems) if problems else None
        if text != state.drift:
            state.drift = text
            await self.engine.states.async_save(state)
        if not problems:
            return []
        healing = bool(heal and self.engine.auto_deploy(name) and state.health == "healthy")
        _LOGGER.warning("Stack %s drifted: %s", name, text)
        self.app.bus.async_fire(DriftDetected(stack=name, details=text or "", healing=healing))
        if healing:
            await self.engine.async_request("deploy", name, revision=state.deployed_revision, trigger="drift",
                                            reason=f"drift: {text}")
        return problems

    async def async_job(self) -> Any:
        """The periodic check (cron `settings.drift_check`)."""
        try:
            return await self.async_check_all()
        except Exception:
            _LOGGER.exception("Drift check failed")
            return {}
