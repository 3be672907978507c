"""Sign-in under attack: failure budgets per (account, address), per address and overall, and a verify gate."""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")
# Failure counters are kept per key, unknown names included; past this many, the stalest go first.
MAX_TRACKED = 10_000
# Addresses that signed in lately, which the global budget lets through (bounded, oldest forgotten).
MAX_GOOD_ADDRESSES = 1024
UNKNOWN_ADDRESS = "unknown"


class LoginThrottled(Exception):
    """Too many failed sign-ins for this account and address, this address, or overall."""

    def __init__(self, retry_after: float, message: str = "too many failed sign-ins; try again later") -> None:
        """Remember when the caller may try again."""
        super().__init__(message)
        self.retry_after = max(retry_after, 0.0)


class _Budget:
    """The times of the last `limit` failures per key; full within `window` means throttled."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.failures: OrderedDict[Any, deque[float]] = OrderedDict()

    def wait(self, key: Any, now: float) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        times = self.failures.get(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, self.window - (now - times[0]))

    def add(self, key: Any, now: float) -> None:
        times = self.failures.get(key)
        if times is None:
            if len(self.failures) >= MAX_TRACKED:
                self._prune(now)
            times = self.failures[key] = deque(maxlen=self.limit)
        else:
            self.failures.move_to_end(key)
        times.append(now)

    def clear(self, key: Any) -> None:
        self.failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self.failures.items() if not t or now - t[-1] >= self.window]:
            del self.failures[key]
        while len(self.failures) >= MAX_TRACKED:  # all fresh: the least recently failing go
            self.failures.popitem(last=False)


class LoginThrottle:
    """Counts failed sign-ins so that a guesser is slowed without locking the owner out from elsewhere.

    Three budgets within `window` seconds: `attempts` per (account, address) — the right password
    from another address is never refused because of them; `address_attempts` per address across
    accounts (a password spray from one place); `global_attempts` overall (a spray from many places),
    which still lets through addresses that signed in successfully lately.
    """

    def __init__(self, *, attempts: int, address_attempts: int, global_attempts: int, window: float,
                 remember_good: float = 7 * 86400.0) -> None:
        """Set the three budgets and how long a successful address is remembered."""
        self.window = window
        self._pair = _Budget(attempts, window)
        self._address = _Budget(address_attempts, window)
        self._global = _Budget(global_attempts, window)
        self._good: OrderedDict[str, float] = OrderedDict()
        self._remember_good = remember_good

    def check(self, account: str, address: str | None) -> None:
        """Raise LoginThrottled when any budget that applies to this attempt is spent."""
        now = time.monotonic()
        address = address or UNKNOWN_ADDRESS
        wait = max(self._pair.wait((account.lower(), address), now), self._address.wait(address, now))
        if wait > 0:
            raise LoginThrottled(wait)
        wait = self._global.wait(None, now)
        if wait > 0 and not self._recently_good(address, now):
            raise LoginThrottled(wait, "too many failed sign-ins overall; try again later")

    def failed(self, account: str, address: str | None) -> None:
        """Count a failed attempt against every budget."""
        now = time.monotonic()
        address = address or UNKNOWN_ADDRESS
        self._pair.add((account.lower(), address), now)
        self._address.add(address, now)
        self._global.add(None, now)

    def succeeded(self, account: str, address: str | None) -> None:
        """Forget this pair's failures and remember the address as one that signs in."""
        address = address or UNKNOWN_ADDRESS
        self._pair.clear((account.lower(), address))
        self._good[address] = time.monotonic()
        self._good.move_to_end(address)
        while len(self._good) > MAX_GOOD_ADDRESSES:
            self._good.popitem(last=False)

    def _recently_good(self, address: str, now: float) -> bool:
        seen = self._good.get(address)
        return seen is not None and now - seen < self._remember_good

    @property
    def tracked(self) -> int:
        """How many counters are held (bounded by MAX_TRACKED per budget)."""
        return len(self._pair.failures) + len(self._address.failures)


class SignInBusy(Exception):
    """More sign-ins are being checked than the gate admits; the caller should retry shortly."""


class VerifyGate:
    """Runs slow password checks in a few worker threads; beyond `queue` waiting checks it refuses at once.

    argon2id takes about 50 ms of CPU and 64 MiB per check; on the event loop ten of them stall
    every request, webhook and job. Here they run off the loop (argon2 releases the GIL), at most
    `concurrency` at a time, so the loop keeps a core.
    """

    def __init__(self, concurrency: int | None = None, queue: int = 4) -> None:
        """Size the pool: by default half the CPUs, at least one."""
        self.concurrency = concurrency or max(1, (os.cpu_count() or 2) // 2)
        self.limit = self.concurrency + queue
        self.pending = 0
        self.refused = 0
        self._executor: ThreadPoolExecutor | None = None

    async def async_run(self, func: Callable[..., _T], *args: Any) -> _T:
        """Run `func(*args)` in the pool; raise SignInBusy when too many checks are pending."""
        if self.pending >= self.limit:
            self.refused += 1
            raise SignInBusy("too many sign-ins are being checked; try again in a moment")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="verify")
        self.pending += 1
        # Counted down when the thread finishes, not when the caller stops waiting, so a client
        # that disconnects cannot make room for more concurrent checks than the pool runs.
        future = asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        future.add_done_callback(self._done)
        return await future

    def _done(self, _future: asyncio.Future[Any]) -> None:
        self.pending -= 1

    def close(self) -> None:
        """Stop the worker threads once they finish what they run."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
