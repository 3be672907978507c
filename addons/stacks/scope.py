"""The change scope: which stacks a new revision of a repo touches, and why, in words a person reads."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from addons.repos.contract import REPOS, RepoSynced

from .models import StackSpec
from .state import StackState

if TYPE_CHECKING:
    from .engine import StackEngine

_LOGGER = logging.getLogger(__name__)
MAX_LISTED_PATHS = 3


def describe_change(short: str, ours: list[str], inputs_changed: bool) -> str | None:
    """The reason of a deploy from the changed paths under a stack's folder and its inputs; None: untouched."""
    if ours:
        listed = ", ".join(ours[:MAX_LISTED_PATHS])
        more = f" (+{len(ours) - MAX_LISTED_PATHS} more)" if len(ours) > MAX_LISTED_PATHS else ""
        return f"commit {short} changed {listed}{more}"
    if inputs_changed:
        return "values changed"
    return None


def held_back(state: StackState, revision: str, spec: StackSpec) -> bool:
    """True when `revision` failed with the stack's current inputs: automatic triggers leave it alone.

    Once the config inputs changed (a missing value was added), the same revision may work and is tried.
    """
    info = state.bad.get(revision)
    return info is not None and info.get("inputs_hash") in (None, spec.inputs_hash)


class ChangeScope:
    """Evaluates each sync of a repo: a deploy for every stack whose folder or inputs changed."""

    def __init__(self, engine: StackEngine) -> None:
        """Bind the engine that queues the deploys."""
        self.engine = engine
        self.app = engine.app
        self._evaluating: dict[str, asyncio.Lock] = {}

    async def async_on_repo_synced(self, event: RepoSynced) -> None:
        """Decide, per stack of the synced repo, whether the new revision needs a deploy."""
        if self.app.oneshot:
            return  # a one-shot CLI verb deploys only the stack it was asked for
        # Listeners run as tasks: evaluations of one repo go in sync order, so an older revision's
        # evaluation can never fold into (and so replace) the queued deploy of a newer one.
        async with self._evaluating.setdefault(event.repo, asyncio.Lock()):
            try:
                await self.async_evaluate(event.repo, event.revision, trigger=event.trigger, actor=event.actor)
            except Exception:
                _LOGGER.exception("Stacks: cannot evaluate %s at %s", event.repo, event.revision)

    async def async_evaluate(self, repo_name: str, revision: str, *, trigger: str,
                             actor: str | None = None) -> list[int]:
        """Queue a deploy for every stack of the repo whose content or inputs changed; returns run ids.

        The runs carry the sync's trigger and actor (a webhook push reads `webhook`), but stay automatic:
        they respect bad marks and skip an unchanged rendered output whatever started the sync.
        """
        before = {name: s for name, s in self.engine.specs().items() if s.repo == repo_name}
        if self.engine.conf["discover"]:
            await self.engine.async_discover(repo_name, revision)
        repo = self.app.data[REPOS].get(repo_name)
        diffs: dict[str, list[str]] = {}

        async def changed(old: str) -> list[str]:
            if old not in diffs:
                diffs[old] = await repo.async_changed_paths(old, revision)
            return diffs[old]

        for name, spec in before.items():
            if spec.discovered and name not in self.engine.specs() and self.engine.states.get(name).deployed_revision:
                await self.engine.orphans.async_orphan(spec, f"its folder {spec.path} is gone from {repo_name} at "
                                                f"{revision[:7]}", trigger=trigger)
        run_ids = []
        for spec in [s for s in self.engine.specs().values() if s.repo == repo_name]:
            if await self.engine.orphans.async_check(spec, revision, await self._async_touched(spec, revision, changed),
                                              trigger=trigger):
                continue
            reason = await self._async_reason(spec, revision, changed)
            if reason is None:
                continue
            run = await self.engine.async_request("deploy", spec.name, revision=revision, trigger=trigger,
                                                  reason=reason, actor=actor, auto=True)
            run_ids.append(run.id)
        return run_ids

    async def _async_touched(self, spec: StackSpec, revision: str, changed: Any) -> list[str]:
        """The changed paths under the stack's folder since its deployed revision ([] when unknown)."""
        deployed = self.engine.states.get(spec.name).deployed_revision
        if not deployed or deployed == revision:
            return []
        try:
            return [p for p in await changed(deployed) if spec.owns(p)]
        except Exception as err:  # the deployed revision left the repo (a force push): _async_reason says so
            _LOGGER.debug("Stack %s: no diff from %s: %s", spec.name, deployed[:7], err)
            return []

    async def _async_reason(self, spec: StackSpec, revision: str, changed: Any) -> str | None:
        """Why this stack must deploy at `revision`, in words, or None when it is untouched."""
        state = self.engine.states.get(spec.name)
        if not self.engine.auto_deploy(spec.name) or state.desired != "running":
            return None  # off, or stopped by a person: their deploy (or start) brings it back
        short = revision[:7]
        if held_back(state, revision, spec):
            return None
        if state.deployed_revision is None:
            return f"first deploy of {spec.name} at commit {short}"
        ours = [p for p in (await changed(state.deployed_revision) if state.deployed_revision != revision else [])
                if spec.owns(p)]
        inputs_changed = state.inputs_hash is not None and state.inputs_hash != spec.inputs_hash
        if ours or inputs_changed:
            # The newest bad revision with the same stack content is not retried by an unrelated commit.
            for bad_rev, info in state.bad.items():
                same_inputs = info.get("inputs_hash") == spec.inputs_hash
                if same_inputs and not [p for p in await changed(bad_rev) if spec.owns(p)]:
                    _LOGGER.info("Stack %s: %s has the content of bad revision %s; not retried",
                                 spec.name, short, bad_rev[:7])
                    return None
        return describe_change(short, ours, inputs_changed)
