"""Live events over WebSocket: a bounded queue per client, so a slow client never slows the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..bus import MATCH_ALL, EventBus
from ..events import Event
from .limits import WS_MAX_MSG_SIZE

_LOGGER = logging.getLogger(__name__)
CLIENT_QUEUE = 1000
# Sent when a client fell behind: its view has a gap, so it must reconnect and reload what it shows.
CLOSE_TOO_SLOW = WSCloseCode.TRY_AGAIN_LATER


@dataclass(eq=False)
class _Client:
    """One connected WebSocket: its pending events, its type filter, and whether it fell behind."""

    types: set[str] | None
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    overflowed: bool = False

    def offer(self, data: dict[str, Any]) -> bool:
        """Queue an event; False when the client is too far behind to take it."""
        if self.types and data["type"] not in self.types:
            return True
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True

    def stop(self) -> None:
        """Wake the sender so it ends; drop what is queued when there is no room for the marker."""
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()


class LiveHub:
    """Fans bus events out to WebSocket clients; a client that falls behind is disconnected."""

    def __init__(self, bus: EventBus) -> None:
        """Listen to every event on the bus."""
        self._clients: set[_Client] = set()
        self.dropped = 0
        self._unsub = bus.async_listen(MATCH_ALL, self._on_event)

    def _on_event(self, event: Event) -> None:
        if not self._clients:
            return
        data = event.as_dict()
        for client in list(self._clients):
            if not client.offer(data):
                # Dropping silently would leave a page showing a run as running forever; instead
                # the client is told to reconnect and reload.
                self.dropped += 1
                client.overflowed = True
                self._clients.discard(client)
                client.stop()

    @property
    def clients(self) -> int:
        """How many WebSocket clients are connected."""
        return len(self._clients)

    async def async_handle(self, request: web.Request, types: set[str] | None) -> web.WebSocketResponse:
        """Serve one client until it disconnects or falls behind."""
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MSG_SIZE)
        await ws.prepare(request)
        client = _Client(types)
        self._clients.add(client)
        reader = asyncio.create_task(self._read(ws, client))
        try:
            while True:
                item = await client.queue.get()
                if item is None or ws.closed:
                    break
                await ws.send_str(json.dumps(item, default=str))
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self._clients.discard(client)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if client.overflowed:
                _LOGGER.info("Live events client fell behind; disconnected")
                await ws.close(code=CLOSE_TOO_SLOW, message=b"too slow: reconnect")
            else:
                await ws.close()
        return ws

    @staticmethod
    async def _read(ws: web.WebSocketResponse, client: _Client) -> None:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        client.stop()

    async def async_close(self) -> None:
        """Disconnect every client."""
        self._unsub()
        for client in list(self._clients):
            client.stop()
        self._clients.clear()
