"""The Appliance: the one object handed to every addon (config, bus, store, scheduler, runs, http)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, logredact
from .bus import EventBus
from .config import CheckResult, data_dir_for
from .datakeys import AddonData
from .engines import LOCAL, Engines
from .events import AddonFailed
from .retention import Retention
from .runs import Redactor, RunManager
from .scheduler import Scheduler
from .services import ServiceRegistry
from .store import Store
from .windows import MaintenanceWindow
from .yaml import Secret

if TYPE_CHECKING:
    import docker

    from .http.routes import RouteTable
    from .http.tls import CertificateStore
    from .http.ui import UiRegistry

_LOGGER = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


@dataclass
class AddonError:
    """Why an addon is disabled."""

    domain: str
    error: str
    time: float = field(default_factory=time.time)


class Appliance:
    """Holds the shared services; addons keep their own state in `app.data[KEY]` (typed `DataKey`s)."""

    def __init__(self, checked: CheckResult, *, oneshot: bool = False) -> None:
        """Build the services from a checked config; nothing is opened yet."""
        from .http.limits import SocketLimits
        from .http.routes import RouteTable
        from .http.ui import UiRegistry

        self.version = __version__
        self.checked = checked
        self.config_path = checked.path.resolve()
        self.conf: dict[str, Any] = checked.domains
        self.core = checked.domains.get("dockmaster", {})
        self.http_conf = checked.domains.get("http", {})
        self.auth_conf = checked.domains.get("auth", {})
        self.name: str = self.core.get("name", "dockmaster")
        self.time_zone: str = self.core.get("time_zone", "UTC")
        self.data_dir = data_dir_for(self.config_path, self.core)
        self.oneshot = oneshot
        self.redactor = Redactor()
        self.redactor.add(*_secret_values(checked.domains))
        logredact.register(self.redactor)
        self.bus = EventBus()
        self.store = Store(self.data_dir / "dockmaster.db")
        self.scheduler = Scheduler(self.time_zone)
        self.runs = RunManager(self.store, self.bus, self.redactor)
        self.retention = Retention(self.store, self.core.get("retention"))
        self.windows: dict[str, MaintenanceWindow] = {}
        self.api: RouteTable = RouteTable()
        # Live connections (event streams, log viewers) each hold a slot until they close.
        self.sockets = SocketLimits(self.http_conf.get("max_websockets", 64),
                                    self.http_conf.get("max_websockets_per_identity", 8))
        self.ui: UiRegistry = UiRegistry()
        self.data = AddonData()
        self.loaded_addons: list[str] = []
        self.addon_errors: dict[str, AddonError] = {}
        self.started = time.time()
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        # Docker engines by name: `local` always; the `engines` addon adds remote ones.
        self.engines = Engines()
        # True while this process holds the data-dir lock: it alone repairs what a crash left
        # (runs marked interrupted, tmpfs secrets removed), never what a live daemon is doing.
        self.primary = False
        self._data_lock: Any = None
        # Named async callables addons offer to the API, UI and one-shot CLI ("stacks.deploy").
        self.services = ServiceRegistry()
        # The served certificate when Dockmaster speaks HTTPS itself (`http.tls`).
        self.tls: CertificateStore | None = None
        from .metrics import Metrics

        self.metrics = Metrics(self)

    # --- lifecycle hooks for addons ------------------------------------------------------

    def on_start(self, hook: Hook) -> None:
        """Run `hook` once every addon is set up (start background loops here)."""
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Run `hook` at shutdown, in reverse order of registration."""
        self._on_stop.append(hook)

    async def async_start(self) -> None:
        """Run start hooks and the scheduler (not in one-shot CLI mode)."""
        for hook in self._on_start:
            try:
                await hook()
            except Exception:
                _LOGGER.exception("Start hook %s failed", hook)
        if not self.oneshot:
            await self.scheduler.async_start()

    async def async_stop(self) -> None:
        """Stop the scheduler, run stop hooks, record cut-off runs, drain listeners, release the data-dir lock."""
        self.runs.stopping = True
        await self.scheduler.async_stop()
        for hook in reversed(self._on_stop):
            try:
                await hook()
            except Exception:
                _LOGGER.exception("Stop hook %s failed", hook)
        interrupted = await self.runs.async_interrupt_live()
        if interrupted:
            _LOGGER.warning("%d run(s) still in progress were recorded as interrupted", interrupted)
        await self.bus.async_drain()
        for client in self.engines.clients():
            await asyncio.get_running_loop().run_in_executor(None, client.close)
        await self.engines.async_close()
        self.release_data_dir()

    def lock_data_dir(self) -> bool:
        """Take the data dir's process lock without waiting; True when this process holds it (blocks: file I/O).

        The kernel drops the lock when the process dies, so a `kill -9` leaves no stale lock behind.
        """
        if self._data_lock is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.data_dir / ".lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._data_lock = handle
        self.primary = True
        return True

    def release_data_dir(self) -> None:
        """Let another process (the next daemon, a one-shot CLI verb) take the data dir."""
        handle, self._data_lock = self._data_lock, None
        self.primary = False
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # --- shared helpers ----------------------------------------------------------------

    def addon_failed(self, domain: str, error: str) -> None:
        """Disable an addon with a visible error (log, status API, UI banner, event)."""
        error = self.redactor(error)  # setup errors often quote the config value that failed
        _LOGGER.error("Addon %s disabled: %s", domain, error)
        self.addon_errors[domain] = AddonError(domain, error)
        if domain in self.loaded_addons:
            self.loaded_addons.remove(domain)
        self.bus.async_fire(AddonFailed(domain=domain, error=error))

    def docker(self, engine: str = LOCAL) -> docker.DockerClient:
        """The shared docker SDK client of an engine (default: the environment's); its calls block."""
        return self.engines.docker(engine)

    async def async_run_blocking(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking call (GitPython, docker SDK, file I/O) in the default executor."""
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)

    def window(self, name: str | None) -> MaintenanceWindow | None:
        """The named maintenance window, or None when `name` is empty."""
        if not name:
            return None
        return self.windows.get(name)

    def link(self, path: str) -> str:
        """An absolute link for notifications, from `http.base_url` when set."""
        base = self.http_conf.get("base_url") or f"http://127.0.0.1:{self.http_conf.get('port', 8099)}"
        return base.rstrip("/") + path

    def status(self) -> dict[str, Any]:
        """The appliance summary served at /api/v1/status."""
        return {
            "name": self.name,
            "version": self.version,
            "uptime": round(time.time() - self.started, 1),
            "addons": {
                "loaded": sorted(self.loaded_addons),
                "failed": [
                    {"domain": e.domain, "error": e.error, "time": e.time}
                    for e in self.addon_errors.values()
                ],
            },
            "config_errors": [issue.as_dict() for issue in self.checked.issues],
            "active_runs": len(self.runs.active),
            "tls": self.tls.info.as_dict() if self.tls and self.tls.info else None,
            "limits": {"websockets": self.sockets.status()},
            "database": {"bytes": self.store.size_bytes, "last_prune": self.retention.last},
            "windows": {
                name: {"open": w.is_open(), "next_open": w.next_open().isoformat(), "text": w.describe()}
                for name, w in self.windows.items()
            },
        }


def _secret_values(value: Any) -> list[str]:
    """Every `!secret` string in the validated config, for redaction."""
    found: list[str] = []
    if isinstance(value, Secret):
        found.append(str(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(_secret_values(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(_secret_values(item))
    return found


def resolve_data_dir(path: Path, conf: dict[str, Any]) -> Path:
    """Expose the data-dir rule for the CLI."""
    return data_dir_for(path, conf)
