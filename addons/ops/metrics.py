"""Per-stack Prometheus metrics: health, image updates, last deploy time and deploy durations by outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from addons.stacks.contract import STACKS, DeployFailed, DeployStarted, DeploySucceeded, StackCatalog
from appliance.core import Appliance

if TYPE_CHECKING:
    from .updates import UpdateChecker

_LOGGER = logging.getLogger(__name__)

KV_NAMESPACE = "ops.stack_metrics"
# Deploys take seconds (a recreated container) to minutes (pulls, a slow health gate).
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


def unregister_previous(registry: CollectorRegistry, *names: str) -> None:
    """Drop the collectors an earlier setup of the addon registered under `names` (a config reload sets it up again)."""
    for name in names:
        collector = registry._names_to_collectors.get(name)
        if collector is not None:
            registry.unregister(collector)


class StackMetrics(Collector):
    """Reads the stacks addon's specs and states at scrape time; times deploys from their events."""

    def __init__(self, app: Appliance, checker: UpdateChecker) -> None:
        """Register the collector and the histogram on the appliance's registry and listen to deploys."""
        self.app = app
        self.checker = checker
        self.last_deploy: dict[str, float] = {}
        self._started: dict[int, float] = {}
        unregister_previous(app.metrics.registry, "dockmaster_stack_deploy_duration_seconds",
                            "dockmaster_stack_healthy")
        self.durations = Histogram(
            "dockmaster_stack_deploy_duration_seconds", "Deploy duration from start to healthy or failed",
            ["stack", "outcome"], buckets=DURATION_BUCKETS, registry=app.metrics.registry,
        )
        app.metrics.registry.register(self)
        app.bus.async_listen(DeployStarted, self._on_started)
        app.bus.async_listen(DeploySucceeded, self._async_on_succeeded)
        app.bus.async_listen(DeployFailed, self._on_failed)

    async def async_load(self) -> None:
        """Read the last deploy times persisted before a restart."""
        self.last_deploy = {k: float(v) for k, v in (await self.app.store.kv_all(KV_NAMESPACE)).items()}

    def _on_started(self, event: DeployStarted) -> None:
        if event.run_id is not None and not event.dry_run:
            self._started[event.run_id] = event.time

    def _observe(self, event: DeploySucceeded | DeployFailed, outcome: str) -> None:
        started = self._started.pop(event.run_id, None) if event.run_id is not None else None
        if started is not None:
            self.durations.labels(event.stack, outcome).observe(max(0.0, event.time - started))

    def _on_failed(self, event: DeployFailed) -> None:
        self._observe(event, "failed")

    async def _async_on_succeeded(self, event: DeploySucceeded) -> None:
        self._observe(event, "succeeded")
        self.last_deploy[event.stack] = event.time
        await self.app.store.kv_set(KV_NAMESPACE, event.stack, event.time)

    def _stacks(self) -> StackCatalog | None:
        return self.app.data.get(STACKS)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples (the registry asks before the stacks are loaded)."""
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("dockmaster_stack_healthy", "1 when the stack's last deploy passed its health gate",
                              labels=["stack"]),
            GaugeMetricFamily("dockmaster_stack_update_available",
                              "1 when the last image check found a newer image for the stack", labels=["stack"]),
            GaugeMetricFamily("dockmaster_stack_last_deploy_timestamp_seconds",
                              "Unix time of the stack's last successful deploy", labels=["stack"]),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per configured stack (the last deploy time only once one happened)."""
        healthy, updates, last = self._families()
        stacks = self._stacks()
        for name in stacks.names() if stacks is not None else []:
            healthy.add_metric([name], 1.0 if stacks is not None and stacks.health_of(name) == "healthy" else 0.0)
            status = self.checker.status.get(name) or {}
            updates.add_metric([name], 1.0 if status.get("update_available") else 0.0)
            if name in self.last_deploy:
                last.add_metric([name], self.last_deploy[name])
        yield from (healthy, updates, last)
