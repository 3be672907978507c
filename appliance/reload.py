"""Check and reload the config without a restart: only addons whose block changed are set up again.

While an addon is set up, the loader records what it registers (its footprint: event listeners, cron
jobs, start and stop hooks, services, navigation links, dashboard cards). A reload checks the whole config first and
changes nothing when it has a problem; otherwise it waits for running runs to finish, tears down the
footprint of each changed addon (and of the addons that depend on it), sets them up again with their
new block, runs their start hooks, and records who reloaded what in the audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import CheckResult, check_config
from .const import CORE_DOMAINS
from .datakeys import DataKey
from .errors import Conflict

if TYPE_CHECKING:
    from .auth import AuthManager
    from .core import Appliance, Hook
    from .http.ui import DashboardCard, NavEntry

_LOGGER = logging.getLogger(__name__)

RESTART_DOMAINS = ("dockmaster", "http")  # the listening socket, data dir and logging are set at start


@dataclass
class Footprint:
    """What one addon registered on the shared services during its setup."""

    listeners: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    nav: list[NavEntry] = field(default_factory=list)
    data: list[DataKey[Any]] = field(default_factory=list)
    cards: list[DashboardCard] = field(default_factory=list)


@dataclass
class _Mark:
    listeners: dict[str, list[Callable[..., Any]]]
    jobs: set[str]
    on_start: int
    on_stop: int
    services: set[str]
    nav: int
    data: set[DataKey[Any]]
    cards: int


_FOOTPRINTS: weakref.WeakKeyDictionary[Appliance, dict[str, Footprint]] = weakref.WeakKeyDictionary()
_LOCKS: weakref.WeakKeyDictionary[Appliance, asyncio.Lock] = weakref.WeakKeyDictionary()


def mark(app: Appliance) -> _Mark:
    """Note the shared registries before an addon's setup."""
    return _Mark({k: list(v) for k, v in app.bus._listeners.items()}, set(app.scheduler.jobs),
                 len(app._on_start), len(app._on_stop), set(app.services.names()), len(app.ui.nav), set(app.data),
                 len(app.ui.cards))


def remember(app: Appliance, domain: str, before: _Mark) -> None:
    """Record what `domain` added since `before` (called by the loader after each setup)."""
    listeners = [(name, cb) for name, cbs in app.bus._listeners.items() for cb in cbs
                 if cb not in before.listeners.get(name, [])]
    _FOOTPRINTS.setdefault(app, {})[domain] = Footprint(
        listeners=listeners,
        jobs=[name for name in app.scheduler.jobs if name not in before.jobs],
        on_start=app._on_start[before.on_start:],
        on_stop=app._on_stop[before.on_stop:],
        services=[name for name in app.services.names() if name not in before.services],
        nav=app.ui.nav[before.nav:],
        data=[key for key in app.data if key not in before.data],
        cards=app.ui.cards[before.cards:],
    )


def footprint(app: Appliance, domain: str) -> Footprint | None:
    """What `domain` registered at its last setup."""
    return _FOOTPRINTS.get(app, {}).get(domain)


@dataclass
class ReloadResult:
    """What a reload did (or why it did nothing)."""

    ok: bool
    errors: list[dict[str, Any]] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    auth: bool = False
    restart_required: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"ok": self.ok, "errors": self.errors, "reloaded": self.reloaded, "added": self.added,
                "removed": self.removed, "failed": self.failed, "auth": self.auth,
                "restart_required": self.restart_required}


def _addon_blocks(domains: dict[str, Any]) -> dict[str, Any]:
    return {d: v for d, v in domains.items() if d not in CORE_DOMAINS}


def _dependents(app: Appliance, changed: set[str], registry: Any) -> set[str]:
    """`changed` plus every loaded addon that (transitively) depends on one of them."""
    result = set(changed)
    grew = True
    while grew:
        grew = False
        for domain in app.loaded_addons:
            addon = registry.get(domain)
            if domain in result or addon is None or addon.module is None:
                continue
            if result & {*addon.dependencies, *addon.after}:
                result.add(domain)
                grew = True
    return result


def _teardown(app: Appliance, domain: str) -> None:
    """Undo an addon's footprint; runs it started keep going (they hold their own references)."""
    fp = footprint(app, domain)
    if domain in app.loaded_addons:
        app.loaded_addons.remove(domain)
    app.addon_errors.pop(domain, None)
    if fp is None:
        return
    for key in fp.data:
        app.data.pop(key, None)
    for name, callback in fp.listeners:
        with contextlib.suppress(ValueError):
            app.bus._listeners[name].remove(callback)
    for name in fp.jobs:
        job = app.scheduler.jobs.pop(name, None)
        if job is not None and job._task is not None:
            job._task.cancel()  # the cron loop only; work it submitted runs on in its own task
    for hook in fp.on_start:
        with contextlib.suppress(ValueError):
            app._on_start.remove(hook)
    for hook in fp.on_stop:
        with contextlib.suppress(ValueError):
            app._on_stop.remove(hook)
    for name in fp.services:
        app.services.unregister(name)
    for entry in fp.nav:
        with contextlib.suppress(ValueError):
            app.ui.nav.remove(entry)
    for card in fp.cards:
        with contextlib.suppress(ValueError):
            app.ui.cards.remove(card)


async def _async_wait_for_runs(app: Appliance, wait: float) -> list[int]:
    """Wait up to `wait` seconds for running runs to finish; returns the ids still running."""
    deadline = time.monotonic() + wait
    while True:
        running = [run_id for run_id, run in app.runs.active.items() if run.status == "running"]
        if not running or time.monotonic() >= deadline:
            return running
        await asyncio.sleep(0.2)


async def async_reload(app: Appliance, auth: AuthManager | None, *, actor: str, source: str | None = None,
                       wait: float = 60.0, checked: CheckResult | None = None) -> ReloadResult:
    """Check the config, then apply what changed; on any problem nothing changes."""
    lock = _LOCKS.setdefault(app, asyncio.Lock())
    async with lock:
        if checked is None:
            checked = await app.async_run_blocking(check_config, app.config_path)
        if checked.issues:
            result = ReloadResult(False, errors=[i.as_dict() for i in checked.issues])
            app.store.audit(actor, "config_reload", "", source=source, outcome="refused",
                            details={"errors": [str(i) for i in checked.issues][:20]})
            _LOGGER.warning("Config reload by %s refused: %d problem(s)", actor, len(checked.issues))
            return result
        return await _async_apply(app, auth, checked, actor=actor, source=source, wait=wait)


async def _async_apply(app: Appliance, auth: AuthManager | None, checked: CheckResult, *, actor: str,
                       source: str | None, wait: float) -> ReloadResult:
    from .loader import AddonRegistry, _async_setup_one, setup_order

    result = ReloadResult(True)
    new, old = checked.domains, app.conf
    result.restart_required = [d for d in RESTART_DOMAINS if new.get(d) != old.get(d)]
    old_blocks, new_blocks = _addon_blocks(old), _addon_blocks(new)
    registry = AddonRegistry(app.config_path.parent)
    changed = {d for d in new_blocks.keys() | old_blocks.keys() if new_blocks.get(d) != old_blocks.get(d)}
    changed |= {d for d in new_blocks if d in app.addon_errors}  # a disabled addon gets another try
    todo = _dependents(app, changed, registry)
    if todo:
        running = await _async_wait_for_runs(app, wait)
        if running:
            app.store.audit(actor, "config_reload", ",".join(sorted(todo)), source=source, outcome="busy",
                            details={"running": running})
            raise Conflict(f"{len(running)} run(s) still running after {wait:g}s; nothing was changed, try again",
                           details={"running": running})
    # From here on the new config is the appliance's config (core blocks that need a restart stay as they are).
    app.checked = checked
    app.conf = {**new, **{d: old[d] for d in RESTART_DOMAINS if d in old}}
    from .core import _secret_values

    app.redactor.add(*_secret_values(new))
    if new.get("auth") != old.get("auth"):
        app.auth_conf = new["auth"]
        if auth is not None:
            auth.apply_conf(new["auth"])
        result.auth = True
    order = setup_order(sorted(todo), registry)
    for domain in reversed(order):
        if domain in todo:
            _teardown(app, domain)
    hooks: list[Hook] = []
    for domain in order:
        if domain not in todo or domain not in new_blocks:
            continue
        addon = registry.get(domain)
        if addon is None or addon.module is None:
            app.addon_failed(domain, (addon.error if addon else None) or "no such addon")
            continue
        missing = [d for d in addon.dependencies if d not in app.loaded_addons]
        if missing:
            app.addon_failed(domain, f"dependency not available: {', '.join(missing)}")
            continue
        had = footprint(app, domain)
        installed = {(r.method, r.path) for r in app.api.routes}
        count = len(app.api.routes)
        await _async_setup_one(app, addon, new_blocks[domain])
        # The router is frozen once serving: the routes the addon declares again are already there,
        # and routes it never had before can only be served after a restart.
        declared = {(r.method, r.path) for r in app.api.routes[count:]}
        del app.api.routes[count:]
        app.ui.template_dirs = list(dict.fromkeys(app.ui.template_dirs))
        fp = footprint(app, domain)
        if declared - installed and not app.oneshot:
            result.restart_required.append(f"{domain} (new pages and API routes)")
            for entry in fp.nav if fp else []:  # no link to a page that is not served yet
                with contextlib.suppress(ValueError):
                    app.ui.nav.remove(entry)
        if fp is not None:
            hooks.extend(fp.on_start)
        if domain in app.addon_errors:
            result.failed[domain] = app.addon_errors[domain].error
        elif had is None or domain not in old_blocks:
            result.added.append(domain)
        else:
            result.reloaded.append(domain)
    result.removed = sorted(d for d in old_blocks if d not in new_blocks)
    if not app.oneshot:
        for hook in hooks:
            try:
                await hook()
            except Exception:
                _LOGGER.exception("Start hook %s failed after a reload", hook)
    app.store.audit(actor, "config_reload", ",".join(sorted(todo)), source=source,
                    outcome="ok" if not result.failed else "partial",
                    details={k: v for k, v in result.as_dict().items() if k not in ("ok", "errors")})
    _LOGGER.warning("Config reloaded by %s: reloaded %s, added %s, removed %s%s", actor,
                    result.reloaded or "-", result.added or "-", result.removed or "-",
                    f"; restart needed for {', '.join(result.restart_required)}" if result.restart_required else "")
    return result


async def sighup_ctx(webapp: web.Application) -> AsyncIterator[None]:
    """Reload the config on SIGHUP while serving (`cleanup_ctx`)."""
    from .keys import APPLIANCE_KEY, AUTH_KEY

    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    async def _async_on_signal() -> None:
        try:
            result = await async_reload(webapp[APPLIANCE_KEY], webapp[AUTH_KEY], actor="signal:SIGHUP")
        except Conflict as err:
            _LOGGER.error("Config reload on SIGHUP: %s", err)
            return
        for error in result.errors:
            _LOGGER.error("Config reload on SIGHUP refused: %s (%s, line %s)", error["message"], error["file"],
                          error["line"])

    def _on_signal() -> None:
        task = loop.create_task(_async_on_signal(), name="config-reload")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
        loop.add_signal_handler(signal.SIGHUP, _on_signal)
        installed = True
    yield
    if installed:
        loop.remove_signal_handler(signal.SIGHUP)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["Footprint", "ReloadResult", "async_reload", "footprint", "mark", "remember",
           "sighup_ctx"]
