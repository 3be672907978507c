"""The fleet's own scheduling: checks on a cron, and updates in waves (filter, batch, stop when too many fail)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from appliance.core import Appliance
from appliance.errors import Conflict, ValidationFailed
from appliance.runs import Run

from .const import FLEET_KEY

if TYPE_CHECKING:
    from .contract import UpdatesConfig
    from .engine import HostEngine

_LOGGER = logging.getLogger(__name__)

# Single-flight key of the fleet run: one at a time.
FLEET_JOB = "fleet:update"


def select_hosts(engine: HostEngine, groups: dict[str, list[str]], flt: dict[str, Any]) -> list[str]:
    """Host names matching the filter: any of tags, groups and hosts (all when none given), minus exclude."""
    tags, group_names = flt.get("tags") or [], flt.get("groups") or []
    names, exclude = flt.get("hosts") or [], flt.get("exclude") or []
    unknown = [n for n in [*names, *exclude] if n not in engine.conf]
    unknown_groups = [g for g in group_names if g not in groups]
    if unknown or unknown_groups:
        raise ValidationFailed(
            "unknown " + "; ".join(
                part for part in (
                    f"hosts: {', '.join(unknown)}" if unknown else "",
                    f"groups: {', '.join(unknown_groups)}" if unknown_groups else "",
                ) if part
            )
        )
    if not (tags or group_names or names):
        chosen = list(engine.conf)
    else:
        wanted = set(names)
        for group in group_names:
            wanted.update(groups[group])
        chosen = [
            name for name, conf in engine.conf.items()
            if name in wanted or any(tag in conf["tags"] for tag in tags)
        ]
    return [name for name in chosen if name not in set(exclude)]


def plan_waves(hosts: list[str], batch_size: int) -> list[list[str]]:
    """Split hosts into waves of `batch_size`."""
    return [hosts[i:i + batch_size] for i in range(0, len(hosts), batch_size)]


def preview(engine: HostEngine, waves: list[list[str]]) -> list[list[dict[str, Any]]]:
    """Each wave's hosts with their state, pending count and window, for the fleet form."""
    return [
        [{k: engine.describe(n)[k] for k in ("name", "label", "pending_count", "window", "window_text",
                                              "reboot_required", "auto_reboot")} for n in wave]
        for wave in waves
    ]


class FleetUpdater:
    """Schedules the fleet by the `updates:` block and runs fleet updates: one at a time, wave after wave."""

    def __init__(self, app: Appliance, engine: HostEngine) -> None:
        """Bind the engine; nothing is scheduled until `configure`."""
        self.app = app
        self.engine = engine
        self.conf: UpdatesConfig | None = None

    def configure(self, conf: UpdatesConfig) -> None:
        """Check and apply on the block's crons, and offer the fleet API, page and `hosts.fleet_update` service."""
        from . import actions, fleet_api

        if self.conf is not None:
            raise ValueError("the fleet is already configured")
        for group, members in conf["groups"].items():
            unknown = [m for m in members if m not in self.engine.conf]
            if unknown:
                raise ValueError(f"group '{group}' names unknown hosts: {', '.join(unknown)}")
        self.conf = conf
        self.engine.set_fan_out(conf["fan_out"])
        self.app.data[FLEET_KEY] = self
        self.app.scheduler.add_cron("updates.check", conf["check"],
                                    lambda: self.engine.async_check_all(trigger="schedule"),
                                    jitter=30, key="updates:check")
        apply = conf["apply"]
        if apply.get("cron"):
            self.app.scheduler.add_cron("updates.apply", apply["cron"], self._async_scheduled_apply,
                                        key="updates:apply")
        actions.register_fleet(self.app, self)
        fleet_api.register(self.app)
        self.app.ui.add_nav("Fleet", "/fleet", 41)

    @property
    def settings(self) -> UpdatesConfig:
        """The `updates:` block this fleet runs by."""
        if self.conf is None:
            raise Conflict("fleet updates are not configured (add an updates: block)")
        return self.conf

    def plan(self, flt: dict[str, Any], batch_size: int) -> list[list[dict[str, Any]]]:
        """The waves a fleet run with this filter and batch size would make, described for the form."""
        hosts = select_hosts(self.engine, self.settings["groups"], flt)
        return preview(self.engine, plan_waves(hosts, batch_size))

    async def _async_scheduled_apply(self) -> Run:
        apply = self.settings["apply"]
        return await self.async_start(
            batch_size=apply["batch_size"], delay=apply["delay"].total_seconds(),
            max_fail_percentage=apply["max_fail_percentage"], dry_run=False, flt={}, trigger="schedule",
        )

    async def async_start(
        self, *, batch_size: int, delay: float, max_fail_percentage: float, dry_run: bool,
        flt: dict[str, Any], trigger: str, actor: str | None = None,
    ) -> Run:
        """Plan the waves and start the fleet run in the background; returns the run."""
        hosts = select_hosts(self.engine, self.settings["groups"], flt)
        if not hosts:
            raise ValidationFailed("the filter matches no host")
        if self.app.scheduler.busy(FLEET_JOB):
            raise Conflict("a fleet update is already running")
        waves = plan_waves(hosts, batch_size)
        settings = {"batch_size": batch_size, "delay": delay, "max_fail_percentage": max_fail_percentage,
                    "dry_run": dry_run, "filter": flt, "waves": waves}
        run = await self.app.runs.create(
            "fleet_update", "fleet", trigger=trigger, actor=actor, details=settings,
            reason=f"{'dry-run ' if dry_run else ''}update of {len(hosts)} host(s) in {len(waves)} wave(s)",
        )
        self.app.scheduler.submit(
            FLEET_JOB, lambda: self._async_run(run, waves, delay, max_fail_percentage, dry_run), policy="reject"
        )
        return run

    async def _async_run(
        self, run: Run, waves: list[list[str]], delay: float, max_fail: float, dry_run: bool
    ) -> str:
        total = sum(len(w) for w in waves)
        results: dict[str, str] = {}
        failed: list[str] = []
        async with self.app.runs.track("fleet_update", "fleet", trigger=run.trigger, reason=run.reason, run=run):
            for index, wave in enumerate(waves, start=1):
                run.log(f"wave {index}/{len(waves)}: {', '.join(wave)}")
                jobs = [
                    await self.engine.async_submit(
                        name, "update", trigger=run.trigger, actor=run.actor, dry_run=dry_run, wait_busy=True,
                        reason=f"fleet run #{run.id}, wave {index}/{len(waves)}",
                    )
                    for name in wave
                ]
                done = await asyncio.gather(*(job.done for job in jobs), return_exceptions=True)
                for name, job, outcome in zip(wave, jobs, done, strict=True):
                    status = outcome if isinstance(outcome, str) else "failed"
                    results[name] = "deferred" if status == "skipped" else status
                    run.log(f"  {name}: {results[name]} (run #{job.run.id})")
                    if status == "failed":
                        failed.append(name)
                self.app.runs.update(run, details={"results": results, "failed": failed})
                percent = 100.0 * len(failed) / total
                if failed and percent > max_fail:
                    message = (
                        f"stopped after wave {index}/{len(waves)}: {len(failed)} of {total} host(s) failed "
                        f"({percent:.0f}% > max_fail_percentage {max_fail:g}%): {', '.join(failed)}"
                    )
                    run.log(message)
                    skipped = [n for w in waves[index:] for n in w]
                    if skipped:
                        run.log(f"not started: {', '.join(skipped)}")
                    self.app.runs.update(run, reason=message, details={"stopped": True, "not_started": skipped})
                    await self.app.runs.finish(run, "failed", error=message)
                    return "failed"
                if delay and index < len(waves):
                    run.log(f"waiting {delay:g}s before the next wave")
                    await asyncio.sleep(delay)
            deferred = [n for n, s in results.items() if s == "deferred"]
            summary = f"{len(results)} host(s) done, {len(failed)} failed, {len(deferred)} deferred"
            run.log(summary)
            self.app.runs.update(run, reason=summary)
        return run.status
