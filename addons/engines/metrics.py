"""Engine metrics for Prometheus: reachability, running containers and the last check's duration per engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .monitor import EngineMonitor

NAMES = ("dockmaster_engine_up", "dockmaster_engine_containers_running", "dockmaster_engine_check_seconds")


class EngineMetrics(Collector):
    """Reads the monitor's last answers at scrape time (a scrape never contacts an engine)."""

    def __init__(self, app: Appliance, monitor: EngineMonitor) -> None:
        """Register on the appliance's registry, replacing an earlier setup's collector (a reload)."""
        self.monitor = monitor
        registry = app.metrics.registry
        for name in NAMES:
            earlier = registry._names_to_collectors.get(name)
            if earlier is not None:
                registry.unregister(earlier)
        registry.register(self)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per engine that has been checked."""
        up = GaugeMetricFamily(NAMES[0], "1 when the engine answered its last check", labels=["engine"])
        running = GaugeMetricFamily(NAMES[1], "Running containers at the last check", labels=["engine"])
        took = GaugeMetricFamily(NAMES[2], "How long the last check took", labels=["engine"])
        for status in self.monitor.statuses():
            if status.reachable is None:
                continue
            up.add_metric([status.name], 1.0 if status.reachable else 0.0)
            if status.running is not None:
                running.add_metric([status.name], float(status.running))
            if status.took is not None:
                took.add_metric([status.name], status.took)
        yield from (up, running, took)
