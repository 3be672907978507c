"""Runs `addons.notify.child` with a deadline: Apprise works out of process, killed when it overruns."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

from appliance.subprocesses import async_spawn

CHILD = (sys.executable, "-m", "addons.notify.child")
# Starting Python and loading Apprise's plugins takes about half a second before any network I/O.
STARTUP_ALLOWANCE = 15.0


class ChildFailed(Exception):
    """The child did not answer (overran its deadline, crashed or wrote nonsense)."""


async def async_run_child(request: dict[str, Any], deadline: float) -> list[str | None]:
    """Send one request to a fresh child; answers one error (or None) per URL of the request."""
    proc = await async_spawn(
        *CHILD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), deadline)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    try:
        answer = json.loads(out)
    except ValueError:
        raise ChildFailed(f"the notification helper exited with status {proc.returncode}") from None
    if not isinstance(answer, list) or len(answer) != len(request["urls"]):
        raise ChildFailed("the notification helper gave an unexpected answer")
    return [None if item is None else str(item) for item in answer]


async def async_validate(urls: list[str]) -> list[str | None]:
    """Ask Apprise (out of process) whether it can read each URL."""
    if not urls:
        return []
    return await async_run_child({"op": "validate", "urls": urls}, STARTUP_ALLOWANCE + 15.0)
