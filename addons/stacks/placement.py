"""Where a stack runs: its engine, that engine's client and host paths, files copied to it, and outages.

A stack deploys to the engine its config names; once deployed it stays there until a person moves
it (`stacks.move`), because a config edit alone must never start a second copy on another engine.
An engine that stops answering leaves its stacks `unknown`: nothing is marked bad or rolled back,
and the interrupted deploy is tried again when the engine is back.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from addons.engines.contract import ENGINES
from appliance import hostpaths
from appliance.engines import LOCAL, EngineUnavailable
from appliance.errors import Conflict

if TYPE_CHECKING:
    from appliance.core import Appliance
    from appliance.runs import Run

    from .models import StackSpec
    from .state import StackState
    from .workdir import Manifest

_LOGGER = logging.getLogger(__name__)
PING_TIMEOUT = 15.0


class EngineMismatch(Conflict):
    """The config names another engine than the one the stack runs on: a move is a person's decision."""

    blames_revision = False


class Placement:
    """Engine choice, clients, host paths and file delivery for the deployer."""

    def __init__(self, app: Appliance, root: Path) -> None:
        """Bind the appliance and the local folder holding every stack's working folder."""
        self.app = app
        self.root = root
        self._host_paths: dict[str, hostpaths.HostPaths] = {}
        # Deploys cut short by an engine that stopped answering: stack -> revision, tried again on recovery.
        self.interrupted: dict[str, str] = {}

    def engine_for(self, spec: StackSpec, state: StackState, *, moving: bool = False) -> str:
        """The engine a deploy goes to: where the stack runs; a config naming another engine needs a move."""
        current = state.engine or (LOCAL if state.deployed_revision else None)
        if current is not None and state.desired != "down" and (state.mode or "compose") != spec.mode:
            raise EngineMismatch(
                f"{spec.name} runs as a {state.mode or 'compose'} stack and the config now says mode {spec.mode}: "
                "take it down first (Down), then deploy it; switching modes in place would run it twice")
        if current is None or moving or current == spec.engine or state.desired == "down":
            return spec.engine
        raise EngineMismatch(
            f"{spec.name} runs on engine {current} and the config now names {spec.engine}: move it with the Move "
            f"action (it deploys on {spec.engine}, then takes the stack down on {current}); a config edit alone "
            "never moves a running stack")

    async def async_client(self, engine: str) -> Any:
        """The engine's docker client once it answers a ping; raises EngineUnavailable."""
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                client = await self.app.engines.async_docker(engine)
                await self.app.async_run_blocking(client.ping)
        except EngineUnavailable:
            self._poke(engine)
            raise
        except Exception as err:
            self._poke(engine)
            text = f"no answer within {PING_TIMEOUT:g}s" if isinstance(err, TimeoutError) else str(err)
            raise EngineUnavailable(engine, text or type(err).__name__) from None
        return client

    def _poke(self, engine: str) -> None:
        fleet = self.app.data.get(ENGINES)
        if fleet is not None:
            fleet.poke(engine)

    async def async_engine_down(self, engine: str, err: BaseException) -> bool:
        """True when a failure came from an engine that no longer answers (not from the revision)."""
        if isinstance(err, EngineUnavailable):
            return True
        try:
            await self.async_client(engine)
        except EngineUnavailable:
            return True
        return False

    def engine_lost(self, state: StackState, run: Run, engine: str, cause: str, *,
                                revision: str | None) -> None:
        """A run's engine stopped answering: the stack is unknown (not failed), nothing is marked bad."""
        state.health = "unknown"
        if revision:
            self.interrupted[state.name] = revision
        run.log(f"engine {engine} does not answer ({cause}); {state.name} is unknown until it answers again. "
                "Nothing is marked bad and no rollback runs: the deploy is tried again when the engine is back")

    async def async_host_paths(self, engine: str = LOCAL) -> hostpaths.HostPaths:
        """Where working folders are on the engine's host (found once: a container's mounts do not change).

        On the local engine that is where the data dir is mounted from; on a remote engine it is the
        engine's `stacks_dir`, where binds such as `./data` name folders on that host.
        """
        found = self._host_paths.get(engine)
        if found is None:
            files = self.app.engines.get(engine).files
            if files is None:
                found = await self.app.async_run_blocking(hostpaths.detect, self.app.docker(), self.app.data_dir)
            else:
                how = (f"engine {engine}: working folders are copied to {files.root} on its host"
                       if files.delivers else
                       f"engine {engine}: binds under a working folder name folders in {files.root} on its host "
                       "(no file is copied there)")
                found = hostpaths.HostPaths(self.root, Path(str(files.root)), how)
            self._host_paths[engine] = found
            _LOGGER.info("Stacks: %s", found.how)
        return found

    async def async_deliver(self, name: str, engine: str, manifest: Manifest, removed: list[str], run: Run) -> None:
        """Copy the tracked files to the working folder on a remote engine's host (SSH engines)."""
        files = self.app.engines.get(engine).files
        if files is None or not files.delivers:
            return
        remote = files.root / name / "work"
        written = await self.app.data[ENGINES].async_deliver(engine, self.root / name / "work", remote,
                                                             sorted(manifest), removed)
        run.log(f"engine {engine}: {written} tracked file(s) copied to {remote}"
                + (f", {len(removed)} removed" if removed else ""))
