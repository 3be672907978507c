"""The host engine: check, update, reboot, retry and acknowledge, one run per host at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.const import FINAL_STATUSES
from appliance.core import Appliance
from appliance.errors import Conflict, NotFound
from appliance.runs import Run
from appliance.windows import MaintenanceWindow

from .const import (
    DEFAULT_FAN_OUT,
    DEFERRED,
    FAILED,
    IDLE,
    PENDING,
    QUERYING,
    QUEUED,
    REBOOTING,
    UPDATING,
    VERIFYING,
    WAITING_REBOOT,
    WINDOW_POLL,
    HostConfig,
)
from .events import HostRebooted, HostUpdateFailed, HostUpdateSucceeded, RebootRequired, UpdatesAvailable
from .inventory import async_inventory, compose_argv
from .pkg import LockHeld, PackageManager, async_detect, manager_for
from .reboot import async_boot_identity, async_verified_reboot
from .ssh import HostConnection, HostError
from .state import HostStatus, StateStore

_LOGGER = logging.getLogger(__name__)

ACTIONS = ("check", "update", "reboot")


@dataclass
class HostJob:
    """A submitted host action: its run and a future resolving to the run's final status."""

    run: Run
    done: asyncio.Future[Any]


class HostEngine:
    """Owns the connections and states of every configured host."""

    def __init__(self, app: Appliance, hosts: list[HostConfig], default_known_hosts: Path) -> None:
        """Prepare one connection per host; nothing is opened until first use."""
        self.app = app
        self.conf: dict[str, HostConfig] = {h["name"]: h for h in hosts}
        self.states = StateStore(app)
        self.conns = {
            name: HostConnection(conf, Path(conf.get("known_hosts") or default_known_hosts))
            for name, conf in self.conf.items()
        }
        self.managers: dict[str, PackageManager] = {}
        self.fan_out = DEFAULT_FAN_OUT
        self._sem: asyncio.Semaphore | None = None
        self._jobs: dict[str, asyncio.Future[Any]] = {}
        self._runs: dict[str, Run] = {}
        # Injectable clock and poll interval: windows are read against `now()`.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.window_poll = WINDOW_POLL

    # --- lifecycle -----------------------------------------------------------------------

    async def async_load(self) -> None:
        """Load persisted states; a host left mid-action by a stop is shown as failed."""
        await self.states.async_load(list(self.conf))
        if not self.app.primary:
            return  # another Dockmaster process is working on these hosts right now
        for status in self.states.hosts.values():
            if status.state in (QUERYING, UPDATING, REBOOTING, VERIFYING, QUEUED):
                self.states.transition(
                    status.name, FAILED, reason="interrupted", failed_action="check",
                    error=f"Dockmaster stopped while the host was {status.state}",
                )

    async def async_stop(self) -> None:
        """Close every SSH connection."""
        await asyncio.gather(*(c.async_close() for c in self.conns.values()), return_exceptions=True)

    def set_fan_out(self, fan_out: int) -> None:
        """How many hosts are worked on at once."""
        self.fan_out = fan_out
        self._sem = None

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.fan_out)
        async with self._sem:
            yield

    @contextlib.asynccontextmanager
    async def _slot_in_window(self, name: str, run: Run, disruptive: bool) -> AsyncIterator[None]:
        """A fan-out slot; for disruptive work, only while the host's window is open.

        The window is read again once the slot is ours: waiting for a slot behind a busy fleet can
        outlast the window, and disruptive work never starts after it closed.
        """
        while True:
            if disruptive:
                await self._async_wait_window(name, run)
            async with self._slot():
                window = self._window(name) if disruptive else None
                if window is None or window.is_open(self.now()):
                    yield
                    return
            run.log(f"window {window.name} closed while the run waited for a free slot")

    # --- queries -------------------------------------------------------------------------

    def host_conf(self, name: str) -> HostConfig:
        """A host's config, or NotFound."""
        if name not in self.conf:
            raise NotFound(f"no host named '{name}'")
        return self.conf[name]

    def status(self, name: str) -> HostStatus:
        """A host's status, or NotFound."""
        self.host_conf(name)
        return self.states.get(name)

    def describe(self, name: str) -> dict[str, Any]:
        """Config (no secrets) plus status, for the API and the UI."""
        conf = self.host_conf(name)
        data = self.status(name).as_dict()
        window = self.app.window(conf.get("window"))
        data.update(
            address=conf["address"], port=conf["port"], user=conf["user"], tags=conf["tags"],
            window=conf.get("window"), window_text=window.describe() if window else None,
            auto_reboot=conf["auto_reboot"], upgrade=conf["upgrade"], compose_paths=conf["compose_paths"],
            package_manager_setting=conf["package_manager"], busy=self.app.scheduler.busy(f"host:{name}"),
        )
        return data

    # --- submitting work -----------------------------------------------------------------

    async def async_submit(
        self, name: str, action: str, *, trigger: str = "manual", actor: str | None = None,
        dry_run: bool = False, reason: str | None = None, wait_busy: bool = False,
    ) -> HostJob:
        """Start an action on a host as a run; a busy host raises Conflict (or is awaited)."""
        self.host_conf(name)
        assert action in ACTIONS, action
        key = f"host:{name}"
        while self.app.scheduler.busy(key) and name in self._jobs:
            # A job whose run is already final is only returning: wait for it rather than refuse.
            if not wait_busy and self._runs[name].status not in FINAL_STATUSES:
                break
            await asyncio.wait([self._jobs[name]])
        if self.app.scheduler.busy(key):
            raise Conflict(f"host '{name}' is busy with another run")
        words = {"check": "check for updates", "update": "dry-run update" if dry_run else "update",
                 "reboot": "verified reboot"}[action]
        run = await self.app.runs.create(
            f"host_{action}", name, trigger=trigger, actor=actor, reason=reason or f"{trigger} {words}",
            details={"dry_run": dry_run} if action == "update" else {},
        )
        submission = self.app.scheduler.submit(
            key, lambda: self._async_job(name, action, run, dry_run), policy="reject"
        )
        if submission.outcome == "rejected":
            await self.app.runs.finish(run, "skipped", error="host busy")
            raise Conflict(f"host '{name}' is busy with another run")
        self.states.get(name).last_run_id = run.id
        self._jobs[name] = submission.future
        self._runs[name] = run
        return HostJob(run, submission.future)

    async def async_check_all(self, *, trigger: str = "schedule", names: list[str] | None = None) -> dict[str, str]:
        """Check every (or the named) host, `fan_out` at a time; returns each final run status."""
        jobs: dict[str, HostJob] = {}
        for name in names or list(self.conf):
            try:
                jobs[name] = await self.async_submit(name, "check", trigger=trigger)
            except Conflict:
                continue
        results = await asyncio.gather(*(job.done for job in jobs.values()), return_exceptions=True)
        return {name: (r if isinstance(r, str) else "failed") for name, r in zip(jobs, results, strict=True)}

    async def async_retry(self, name: str, *, actor: str | None = None) -> HostJob:
        """Run the failed (or deferred) action again."""
        status = self.status(name)
        if status.state not in (FAILED, DEFERRED):
            raise Conflict(f"host '{name}' is {status.state}, not failed or deferred")
        status.retries += 1
        action = status.failed_action or "check"
        return await self.async_submit(name, action, actor=actor, reason=f"retry #{status.retries} of {action}")

    def acknowledge(self, name: str) -> HostStatus:
        """Accept a failure: the host goes back to idle and its error is cleared."""
        status = self.status(name)
        if status.state != FAILED:
            raise Conflict(f"host '{name}' is {status.state}, not failed")
        return self.states.transition(name, IDLE, reason=f"acknowledged: {status.error}", retries=0,
                                      failed_action=None)

    # --- the work ------------------------------------------------------------------------

    async def _async_job(self, name: str, action: str, run: Run, dry_run: bool) -> str:
        disruptive = action == "reboot" or (action == "update" and not dry_run)
        try:
            async with self._slot_in_window(name, run, disruptive), self.app.runs.track(
                    run.kind, name, trigger=run.trigger, reason=run.reason, run=run):
                try:
                    if action == "check":
                        await self._async_check(name, run)
                    elif action == "update":
                        await self._async_update(name, run, dry_run)
                    else:
                        await self._async_reboot(name, run)
                except LockHeld as err:
                    run.log(f"deferred: {err}")
                    self.states.transition(name, DEFERRED, reason=str(err), failed_action=action)
                    await self.app.runs.finish(run, "skipped", error=f"deferred: {err}")
                except Exception as err:
                    self._fail(name, action, run, err)
                    raise
        except HostError:
            return "failed"
        return run.status

    def _fail(self, name: str, action: str, run: Run, err: Exception) -> None:
        message = str(err) or type(err).__name__
        self.states.transition(name, FAILED, reason=f"{action} failed", error=message, failed_action=action)
        if action == "update":
            self.app.bus.async_fire(HostUpdateFailed(host=name, error=message, run_id=run.id))

    async def _async_manager(self, name: str) -> PackageManager:
        manager = self.managers.get(name)
        if manager is not None:
            return manager
        conf, conn = self.conf[name], self.conns[name]
        pm = conf["package_manager"]
        if pm == "auto":
            pm = await async_detect(conn)
        manager = manager_for(pm, conn, upgrade_mode=conf["upgrade"],
                              lock_timeout=conf["timeouts"]["lock"].total_seconds())
        self.managers[name] = manager
        return manager

    async def _async_check(self, name: str, run: Run) -> None:
        conn = self.conns[name]
        self.states.transition(name, QUERYING, reason=run.reason)
        manager = await self._async_manager(name)
        identity = await async_boot_identity(conn)
        await manager.async_refresh()
        upgrades = await manager.async_list_upgrades()
        held = await manager.async_held()
        reboot = await manager.async_reboot_required()
        inventory = await async_inventory(conn, manager.name, identity)
        pending = [u.as_dict() for u in upgrades]
        for upgrade in upgrades:
            run.log(f"{upgrade.name}: {upgrade.current or '(new)'} -> {upgrade.new}")
        run.log(f"{len(upgrades)} upgradable, {len(held)} held, reboot required: {reboot.required}")
        self.app.runs.update(run, details={"pending": pending, "held": held, "reboot_required": reboot.required})
        status = self.states.get(name)
        was_flagged = status.reboot_required
        new_state = PENDING if upgrades else (WAITING_REBOOT if reboot.required else IDLE)
        self.states.transition(
            name, new_state, reason=reboot.reason if new_state == WAITING_REBOOT else "checked",
            pending=pending, held=held, reboot_required=reboot.required, reboot_packages=reboot.packages,
            package_manager=manager.name, inventory=inventory, boot_id=identity.boot_id,
            pid1_start=identity.pid1_start, last_check=time.time(),
        )
        if upgrades:
            names = [u.name for u in upgrades]
            self.app.bus.async_fire(UpdatesAvailable(host=name, count=len(upgrades), packages=names))
        if reboot.required and not was_flagged:
            self.app.bus.async_fire(RebootRequired(host=name, packages=reboot.packages))

    async def _async_update(self, name: str, run: Run, dry_run: bool) -> None:
        conf, conn = self.conf[name], self.conns[name]
        manager = await self._async_manager(name)
        if dry_run:
            self.states.transition(name, QUERYING, reason="dry-run")
            await manager.async_refresh()
            upgrades = await manager.async_list_upgrades()
            held = await manager.async_held()
            for upgrade in upgrades:
                run.log(f"would upgrade {upgrade.name}: {upgrade.current or '(new)'} -> {upgrade.new}")
            for path in conf["compose_paths"]:
                run.log(f"would pull and bring up the compose project in {path}")
            run.log(f"dry-run: {len(upgrades)} package(s) would be upgraded; nothing was changed")
            pending = [u.as_dict() for u in upgrades]
            self.app.runs.update(run, details={"dry_run": True, "would_upgrade": pending, "held": held})
            self.states.transition(name, PENDING if upgrades else IDLE, reason="dry-run", pending=pending, held=held)
            return
        self.states.transition(name, UPDATING, reason=run.reason)
        repaired = await manager.async_repair()
        if repaired:
            run.log(repaired)
        await manager.async_refresh()
        upgrades = await manager.async_list_upgrades()
        held = await manager.async_held()
        if held:
            run.log(f"held back: {', '.join(held)}")
        if upgrades:
            run.log(f"upgrading {len(upgrades)} package(s) with {manager.name} {conf['upgrade']}")
            output = await manager.async_upgrade()
            run.log("\n".join(line for line in output.splitlines()[-40:] if "(Reading database" not in line))
        else:
            run.log("no package updates")
        for path in conf["compose_paths"]:
            run.log(f"compose pull && up -d in {path}")
            result = await conn.async_run(compose_argv(path), become=True, check=True)
            run.log(result.output.strip()[-2000:])
        reboot = await manager.async_reboot_required()
        self.app.runs.update(run, details={"upgraded": [u.as_dict() for u in upgrades], "held": held,
                                           "reboot_required": reboot.required})
        self.states.transition(name, UPDATING, reason="updated", pending=[], held=held, last_update=time.time(),
                               reboot_required=reboot.required, reboot_packages=reboot.packages)
        self.app.bus.async_fire(HostUpdateSucceeded(host=name, upgraded=len(upgrades), run_id=run.id))
        if not reboot.required:
            self.states.transition(name, IDLE, reason=f"updated {len(upgrades)} package(s)", retries=0)
            return
        run.log(f"reboot required: {reboot.reason} {' '.join(reboot.packages)}".strip())
        self.app.bus.async_fire(RebootRequired(host=name, packages=reboot.packages))
        window = self._window(name)
        if not conf["auto_reboot"]:
            self.states.transition(name, WAITING_REBOOT, reason="reboot required; auto_reboot is off")
        elif window is not None and not window.is_open(self.now()):
            self.states.transition(name, WAITING_REBOOT, reason=f"window {window.name} closed before the reboot")
        else:
            await self._async_reboot_steps(name, run)

    async def _async_reboot(self, name: str, run: Run) -> None:
        await self._async_reboot_steps(name, run)

    async def _async_reboot_steps(self, name: str, run: Run) -> None:
        self.states.transition(name, REBOOTING, reason=run.reason)
        step = self.conf[name]["timeouts"]["reboot"].total_seconds()
        identity = await async_verified_reboot(
            self.conns[name], step_timeout=step, log=run.log,
            on_step=lambda state: self._step(name, state),
        )
        self.managers.pop(name, None)
        reboot = await (await self._async_manager(name)).async_reboot_required()
        self.states.transition(
            name, IDLE, reason="reboot verified", boot_id=identity.boot_id, pid1_start=identity.pid1_start,
            reboot_required=reboot.required, reboot_packages=reboot.packages, retries=0,
        )
        self.app.bus.async_fire(HostRebooted(host=name, boot_id=identity.boot_id))

    def _step(self, name: str, state: str) -> None:
        self.states.transition(name, state, reason="reconnecting after the reboot")

    # --- windows -------------------------------------------------------------------------

    def _window(self, name: str) -> MaintenanceWindow | None:
        window_name = self.conf[name].get("window")
        if not window_name:
            return None
        window = self.app.window(window_name)
        if window is None:
            raise HostError(f"{name}: window '{window_name}' is not configured under windows:")
        return window

    async def _async_wait_window(self, name: str, run: Run) -> None:
        """Keep the run queued until the host's window is open (never start outside it)."""
        window = self._window(name)
        shown = ""
        while window is not None:
            now = self.now()
            if window.is_open(now):
                if shown:
                    run.log(f"window {window.name} is open; starting")
                return
            opens = window.next_open(now)
            reason = f"waiting for window {window.name} at {opens:%Y-%m-%d %H:%M %Z}"
            if reason != shown:
                shown = reason
                run.log(reason)
                self.app.runs.update(run, reason=reason)
                self.states.transition(name, QUEUED, reason=reason)
            await asyncio.sleep(max(0.05, min((opens - now).total_seconds(), self.window_poll)))
