"""Verified reboots: record the boot identity, reboot, see the drop, reconnect until it changed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from .ssh import HostConnection, HostError, HostKeyError, HostUnreachable

# boot_id, then PID 1's start (field 22 of /proc/1/stat, counted after the `(comm)` field, which may
# hold spaces), then the kernel's boot time. Fixed text: nothing from config goes into it.
IDENTITY_SCRIPT = (
    "cat /proc/sys/kernel/random/boot_id; "
    "sed 's/^.*) //' /proc/1/stat | cut -d' ' -f20; "
    "awk '/^btime/ {print $2}' /proc/stat"
)


@dataclass(frozen=True)
class BootIdentity:
    """What changes on a reboot: boot_id on VMs and metal, PID 1's start time in LXC containers too."""

    boot_id: str
    pid1_start: str

    def __str__(self) -> str:
        """Short form for logs."""
        return f"boot_id={self.boot_id} pid1_start={self.pid1_start}"


def parse_identity(text: str) -> BootIdentity:
    """Read the output of IDENTITY_SCRIPT."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        raise HostError(f"cannot read the boot identity (got {text.strip()!r})")
    return BootIdentity(lines[0], f"{lines[2]}+{lines[1]}")


async def async_boot_identity(conn: HostConnection) -> BootIdentity:
    """The host's current boot identity."""
    result = await conn.async_run(["sh", "-c", IDENTITY_SCRIPT], check=True)
    return parse_identity(result.stdout)


async def async_verified_reboot(
    conn: HostConnection,
    *,
    step_timeout: float,
    log: Callable[[str], None],
    on_step: Callable[[str], None] | None = None,
) -> BootIdentity:
    """Reboot and prove it: the connection drops, and after reconnecting the identity differs."""
    before = await async_boot_identity(conn)
    log(f"boot identity before reboot: {before}")
    # The reboot may close the connection under the command: that is the expected path.
    with contextlib.suppress(HostUnreachable):
        await conn.async_run(["reboot"], become=True, timeout=min(step_timeout, 60))
    log("reboot issued; waiting for the connection to drop")
    if not await conn.async_wait_closed(step_timeout):
        await conn.async_close()
        raise HostError(f"{conn.name}: the connection did not drop within {step_timeout:.0f}s after reboot")
    log("connection dropped; reconnecting")
    if on_step:
        on_step("verifying")
    after = await _async_reconnect_until_changed(conn, before, step_timeout, log)
    test = await conn.async_run(["true"], become=True, timeout=min(step_timeout, 60))
    if test.exit_status != 0:
        raise HostError(f"{conn.name}: test command after reboot failed (exit {test.exit_status})")
    log(f"reboot verified: {after}; test command ran")
    return after


async def _async_reconnect_until_changed(
    conn: HostConnection, before: BootIdentity, step_timeout: float, log: Callable[[str], None]
) -> BootIdentity:
    deadline = time.monotonic() + step_timeout
    delay = 0.5
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        try:
            await conn.async_connect()  # verifies the host key again: a changed key stops here
            identity = await async_boot_identity(conn)
        except HostKeyError:
            raise
        except HostError as err:
            last_error = str(err)
            await conn.async_close()
        else:
            if identity.boot_id != before.boot_id or identity.pid1_start != before.pid1_start:
                return identity
            # Still the old boot: the host has not gone down yet (or `reboot` was a no-op).
            last_error = "boot identity unchanged"
            await conn.async_close()
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 10.0)
    raise HostError(f"{conn.name}: did not come back with a new boot identity within {step_timeout:.0f}s "
                    f"({last_error})")
