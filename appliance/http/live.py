"""Live events over WebSocket: a bounded queue per client, so a slow client never slows the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from ..bus import MATCH_ALL, EventBus
from ..events import Event

_LOGGER = logging.getLogger(__name__)
CLIENT_QUEUE = 1000


class LiveHub:
    """Fans bus events out to WebSocket clients; drops (and counts) when a client falls behind."""

    def __init__(self, bus: EventBus) -> None:
        """Listen to every event on the bus."""
        self._clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.dropped = 0
        self._unsub = bus.async_listen(MATCH_ALL, self._on_event)

    def _on_event(self, event: Event) -> None:
        if not self._clients:
            return
        data = event.as_dict()
        for queue in self._clients:
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                self.dropped += 1

    @property
    def clients(self) -> int:
        """How many WebSocket clients are connected."""
        return len(self._clients)

    async def async_handle(self, request: web.Request, types: set[str] | None) -> web.WebSocketResponse:
        """Serve one client until it disconnects."""
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(queue)
        reader = asyncio.create_task(self._read(ws, queue))
        try:
            while True:
                item = await queue.get()
                if item is None or ws.closed:
                    break
                if types and item["type"] not in types:
                    continue
                await ws.send_str(json.dumps(item, default=str))
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self._clients.discard(queue)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()
        return ws

    @staticmethod
    async def _read(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)

    async def async_close(self) -> None:
        """Disconnect every client."""
        self._unsub()
        for queue in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
