"""Engine health: every engine is checked in parallel; an unreachable one is retried with backoff and reported once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.engines import EngineUnavailable

from .events import EngineRecovered, EngineUnreachable

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
CHECK_TIMEOUT = 10.0
DISK_EVERY = 600.0  # `docker system df` walks every layer and volume: not at every check
BACKOFF_FIRST = 5.0
BACKOFF_MAX = 300.0


@dataclass
class EngineStatus:
    """What the last check of one engine found."""

    name: str
    url: str
    reachable: bool | None = None  # None: not checked yet
    error: str | None = None
    version: str | None = None
    api_version: str | None = None
    os: str | None = None
    swarm: str | None = None  # the node's swarm state: inactive | active | ...
    containers: int | None = None
    running: int | None = None
    images: int | None = None
    disk: dict[str, int] = field(default_factory=dict)
    checked: float | None = None
    took: float | None = None
    down_since: float | None = None
    failures: int = 0
    next_check: float = 0.0
    disk_checked: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The API's view (no internal timers)."""
        data = asdict(self)
        data.pop("disk_checked")
        return data


def _probe(client: Any, with_disk: bool) -> dict[str, Any]:
    """Ping, version, counts and (sometimes) disk use of one engine (blocks: docker SDK)."""
    client.ping()
    info = client.info()
    version = client.version()
    found: dict[str, Any] = {
        "version": version.get("Version"), "api_version": version.get("ApiVersion"),
        "os": info.get("OperatingSystem"), "swarm": (info.get("Swarm") or {}).get("LocalNodeState"),
        "containers": info.get("Containers"), "running": info.get("ContainersRunning"), "images": info.get("Images"),
    }
    if with_disk:
        try:
            df = client.df()
        except Exception as err:  # busy with another df, or slow: the engine answered, the figure waits
            _LOGGER.debug("Disk use not measured: %s", err)
            return found
        found["disk"] = {
            "images": int(df.get("LayersSize") or 0),
            "containers": sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or []),
            "volumes": sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or []
                           if (v.get("UsageData") or {}).get("Size", -1) >= 0),
            "build_cache": sum(int(b.get("Size") or 0) for b in df.get("BuildCache") or []),
        }
    return found


class EngineMonitor:
    """Checks every engine on its interval (all due ones at once); fires one event per outage and recovery."""

    def __init__(self, app: Appliance, intervals: dict[str, float], *, default_interval: float = 30.0) -> None:
        """Bind the appliance; `intervals` are the configured engines' check intervals in seconds."""
        self.app = app
        self.intervals = intervals
        self.default_interval = default_interval
        self.status: dict[str, EngineStatus] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._checking: dict[str, asyncio.Lock] = {}

    def get(self, name: str) -> EngineStatus:
        """One engine's status (made on first use)."""
        status = self.status.get(name)
        if status is None:
            status = self.status[name] = EngineStatus(name, self.app.engines.get(name).url)
        return status

    def statuses(self) -> list[EngineStatus]:
        """Every engine's status, `local` first."""
        return [self.get(name) for name in self.app.engines.names()]

    def reachable(self, name: str) -> bool | None:
        """Whether the engine answered at its last check (None: not checked yet)."""
        return self.get(name).reachable

    async def async_check_all(self, *, force: bool = False) -> list[EngineStatus]:
        """Check every engine that is due (all of them with `force`) at the same time."""
        now = time.monotonic()
        due = [name for name in self.app.engines.names() if force or self.get(name).next_check <= now]
        await asyncio.gather(*(self.async_check(name) for name in due))
        return self.statuses()

    async def async_check(self, name: str) -> EngineStatus:
        """Check one engine now; fires EngineUnreachable / EngineRecovered on a change.

        A check asked for while one of the same engine runs waits for it and shares its answer.
        """
        lock = self._checking.setdefault(name, asyncio.Lock())
        if lock.locked():
            async with lock:
                return self.get(name)
        async with lock:
            return await self._async_check(name)

    async def _async_check(self, name: str) -> EngineStatus:
        status = self.get(name)
        started = time.monotonic()
        with_disk = started - status.disk_checked >= DISK_EVERY or not status.disk
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                client = await self.app.engines.async_docker(name)
                found = await self.app.async_run_blocking(_probe, client, with_disk)
        except Exception as err:
            text = err.message if isinstance(err, EngineUnavailable) else (str(err) or type(err).__name__)
            if isinstance(err, TimeoutError):
                text = f"no answer within {CHECK_TIMEOUT:g}s"
            self._failed(status, text, started)
        else:
            self._answered(status, found, started, with_disk)
        return status

    def _failed(self, status: EngineStatus, text: str, started: float) -> None:
        was = status.reachable
        status.reachable, status.error = False, text
        status.checked, status.took = time.time(), time.monotonic() - started
        status.failures += 1
        status.next_check = time.monotonic() + min(BACKOFF_FIRST * 2 ** (status.failures - 1), BACKOFF_MAX)
        if was is not False:
            status.down_since = time.time()
            _LOGGER.warning("Engine %s is unreachable: %s", status.name, text)
            self.app.bus.async_fire(EngineUnreachable(engine=status.name, error=text))

    def _answered(self, status: EngineStatus, found: dict[str, Any], started: float, with_disk: bool) -> None:
        was, since = status.reachable, status.down_since
        for key, value in found.items():
            setattr(status, key, value)
        if "disk" in found:
            status.disk_checked = started
        status.reachable, status.error, status.failures, status.down_since = True, None, 0, None
        status.checked, status.took = time.time(), time.monotonic() - started
        status.next_check = time.monotonic() + self.intervals.get(status.name, self.default_interval)
        if was is False:
            down_for = time.time() - since if since else 0.0
            _LOGGER.info("Engine %s answers again after %.0fs", status.name, down_for)
            self.app.bus.async_fire(EngineRecovered(engine=status.name, down_for=down_for))

    def poke(self, name: str) -> None:
        """Check an engine soon (a run could not reach it): the outage is noticed without waiting."""
        status = self.get(name)
        if status.reachable is not False:
            status.next_check = 0.0
            self._wake.set()

    async def async_start(self) -> None:
        """Start the check loop."""
        self._task = asyncio.create_task(self._async_loop(), name="engine-monitor")

    async def async_stop(self) -> None:
        """Stop the check loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _async_loop(self) -> None:
        while True:
            try:
                await self.async_check_all()
            except Exception:
                _LOGGER.exception("Engine check failed")
            now = time.monotonic()
            upcoming = min((s.next_check for s in self.statuses()), default=now + self.default_interval)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.5, upcoming - now)):
                    await self._wake.wait()
