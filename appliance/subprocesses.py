"""Starting child processes from the event loop without leaking their pipes when the caller is cancelled.

asyncio's `create_subprocess_exec` starts the process, then hands its pipes to the loop in a task of
its own. A cancellation that lands in between closes the transport before any pipe was handed over,
so the pipes stay open until the garbage collector finds them, and the child keeps running. Here the
start is shielded: a cancelled caller waits for the start to finish, kills the child and reaps it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def async_spawn(program: str, *args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec`, safe to cancel while the process starts."""
    start = asyncio.ensure_future(asyncio.create_subprocess_exec(program, *args, **kwargs))
    try:
        return await asyncio.shield(start)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            proc = await start
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        raise
