"""Live container logs over WebSocket: a reader thread, a bounded queue, and drop markers, never a backlog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from aiohttp import WSMsgType, web
from docker.models.containers import Container

from appliance.http.limits import WS_MAX_MSG_SIZE

from .containers import LINE_CAP, cap_line

_LOGGER = logging.getLogger(__name__)

QUEUE_BYTES = 1024 * 1024
LINE_OVERHEAD = 64  # rough per-line cost of a str in the queue, so short lines count too
BATCH_LINES = 500
# Docker hands over one line per frame; waiting this long after the first one sends a busy log in a few
# large frames (about 50 a second at most) instead of one frame per line.
FRAME_INTERVAL = 0.02
_END = None


def drop_marker(count: int) -> str:
    """The line shown where lines were dropped because the viewer fell behind."""
    return f"[... {count} lines dropped ...]"


class LineSplitter:
    """Turns docker log chunks into capped text lines; a line longer than the cap is cut, never buffered."""

    def __init__(self) -> None:
        """Start with an empty partial line."""
        self._partial = bytearray()
        self._overflow = False

    def feed(self, chunk: bytes) -> list[str]:
        """Return the complete lines in `chunk` (plus what was carried over)."""
        lines: list[str] = []
        parts = chunk.split(b"\n")
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if not self._overflow:
                self._partial += part
                if len(self._partial) > LINE_CAP * 4:  # bytes: up to 4 per character
                    self._overflow = True
                    del self._partial[LINE_CAP * 4:]
            if last:
                break
            lines.append(self._take())
        return lines

    def _take(self) -> str:
        text = bytes(self._partial).decode("utf-8", "replace").rstrip("\r")
        self._partial.clear()
        truncated = self._overflow
        self._overflow = False
        line = cap_line(text)
        if truncated and line == text:
            line += " [... line truncated ...]"
        return line

    def flush(self) -> list[str]:
        """The last line when the stream ends without a newline."""
        return [self._take()] if self._partial else []


class LogFollower:
    """Feeds one WebSocket client from a docker log stream read in a thread."""

    def __init__(self, container: Container, *, tail: int, queue_bytes: int = QUEUE_BYTES) -> None:
        """Prepare to follow `container`, starting with its last `tail` lines."""
        self.container = container
        self.tail = tail
        # Items: a batch of lines, a one-item list holding a dropped count, or None at the end.
        self.queue: asyncio.Queue[list[Any] | None] = asyncio.Queue()
        self.capacity = queue_bytes
        self.queued = 0
        self.dropped_total = 0
        self.sent = 0
        self._drop_slot: list[int] | None = None
        self._stream: Any = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- reader thread -------------------------------------------------------------------

    def _read(self) -> None:
        """Blocking: read the log stream and hand lines to the loop until told to stop."""
        assert self._loop is not None
        splitter = LineSplitter()
        try:
            self._stream = self.container.logs(stream=True, follow=True, tail=self.tail, stdout=True, stderr=True)
            if self._stopping.is_set():
                self._stream.close()
                return
            for chunk in self._stream:
                lines = splitter.feed(chunk)
                if lines:
                    self._loop.call_soon_threadsafe(self._offer, lines)
                if self._stopping.is_set():
                    break
            rest = splitter.flush()
            if rest:
                self._loop.call_soon_threadsafe(self._offer, rest)
        except Exception as err:  # the stream ends with an error when we close it; that is the normal stop
            if not self._stopping.is_set():
                _LOGGER.debug("Log stream of %s ended: %s", self.container.name, err)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed at shutdown
                self._loop.call_soon_threadsafe(self.queue.put_nowait, _END)

    def _offer(self, lines: list[str]) -> None:
        """Loop side: queue lines while there is room; count the rest into a drop marker in the stream."""
        room = self.capacity - self.queued
        taken = 0
        cost = 0
        for line in lines:
            if cost + len(line) + LINE_OVERHEAD > room:
                break
            cost += len(line) + LINE_OVERHEAD
            taken += 1
        if taken < len(lines):
            self._drop(len(lines) - taken)
            lines = lines[:taken]
        if lines:
            self.queued += cost
            self._drop_slot = None
            self.queue.put_nowait(lines)

    def _drop(self, count: int) -> None:
        self.dropped_total += count
        if self._drop_slot is None:
            # The marker takes the dropped lines' place in the stream, after what was queued before them.
            self._drop_slot = [0]
            self.queue.put_nowait(self._drop_slot)
        self._drop_slot[0] += count

    def stop(self) -> None:
        """Ask the reader thread to stop and close the stream so its blocking read returns."""
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    # --- WebSocket side ------------------------------------------------------------------

    async def async_serve(self, request: web.Request) -> web.WebSocketResponse:
        """Stream lines to the client as JSON until it leaves or the container's log ends."""
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MSG_SIZE)
        await ws.prepare(request)
        self._loop = asyncio.get_running_loop()
        thread = threading.Thread(target=self._read, name=f"logs:{self.container.name}", daemon=True)
        thread.start()
        reader = asyncio.create_task(self._async_watch_client(ws))
        try:
            await ws.send_json({"type": "start", "container": self.container.name, "line_cap": LINE_CAP})
            while not ws.closed:
                item = await self.queue.get()
                if item is _END:
                    await ws.send_json({"type": "end"})
                    break
                lines: list[str] = []
                dropped = 0
                if self.queue.empty():
                    await asyncio.sleep(FRAME_INTERVAL)
                # Take whatever else is already waiting, so a busy stream goes out in few frames.
                while True:
                    if item is self._drop_slot:
                        self._drop_slot = None  # later drops start a new marker after newer lines
                    if item and isinstance(item[0], int):
                        dropped += item[0]
                        lines.append(drop_marker(item[0]))
                    else:
                        self.queued -= sum(len(line) + LINE_OVERHEAD for line in item)
                        lines.extend(item)
                    if len(lines) >= BATCH_LINES or self.queue.empty():
                        break
                    item = self.queue.get_nowait()
                    if item is _END:
                        self.queue.put_nowait(_END)
                        break
                message: dict[str, Any] = {"type": "lines", "lines": lines}
                if dropped:
                    message["dropped"] = dropped
                await ws.send_json(message)
                self.sent += len(lines)
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self.stop()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()
            # The thread returns once its stream is closed; wait off the loop so shutdown is clean.
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 5.0)
        return ws

    async def _async_watch_client(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        self.stop()
        self.queue.put_nowait(_END)
