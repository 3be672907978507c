"""The in-process event bus: producers fire typed events, listeners never block them."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .events import Event

_LOGGER = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Listener = Callable[[Any], Awaitable[None] | None]
MATCH_ALL = "*"


class EventBus:
    """Dispatch events to listeners by type name; coroutine listeners run as tasks."""

    def __init__(self) -> None:
        """Start with no listeners."""
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    def async_listen(self, event_type: type[E] | str, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` for each event of this type (or `*`); returns an unsubscribe."""
        name = event_type if isinstance(event_type, str) else event_type.type
        self._listeners[name].append(listener)

        def _unsubscribe() -> None:
            if listener in self._listeners[name]:
                self._listeners[name].remove(listener)

        return _unsubscribe

    def async_fire(self, event: Event) -> None:
        """Deliver an event; plain callbacks run now, coroutines are scheduled and not awaited."""
        for listener in (*self._listeners.get(event.type, ()), *self._listeners.get(MATCH_ALL, ())):
            try:
                result = listener(event)
            except Exception:
                _LOGGER.exception("Listener %s failed for %s", listener, event.type)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("Event listener failed", exc_info=task.exception())

    async def async_drain(self) -> None:
        """Wait for listener tasks scheduled so far (used at shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def async_close(self) -> None:
        """Cancel outstanding listener tasks."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._tasks.clear()
