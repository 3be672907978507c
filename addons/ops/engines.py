"""Which Docker engine an operation acts on: a stack's own engine, else the local one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from addons.stacks.contract import STACKS
from appliance.engines import LOCAL

from .containers import service_target

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)


def engine_of(app: Appliance, stack: str | None) -> str:
    """The engine a stack runs on; `local` without a stack (a container named directly)."""
    stacks = app.data.get(STACKS)
    if stack and stacks is not None:
        return stacks.engine_of(stack)
    return LOCAL


async def async_client(app: Appliance, *, stack: str | None = None, target: str | None = None) -> Any:
    """The docker client for a stack, or for a target (`<stack>/<service>` goes to that stack's engine)."""
    if stack is None and target is not None:
        stack = service_target(target)
    return await app.engines.async_docker(engine_of(app, stack))


async def async_reachable_clients(app: Appliance) -> list[tuple[str, Any]]:
    """A client for every engine that answers (one that does not is logged and skipped)."""
    found = []
    for name in app.engines.names():
        try:
            found.append((name, await app.engines.async_docker(name)))
        except Exception as err:  # an unreachable engine: its stacks are checked when it is back
            _LOGGER.warning("Engine %s skipped: %s", name, err)
    return found
