"""Per-host Prometheus metrics read from the persisted host states at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .const import STATES

if TYPE_CHECKING:
    from .engine import HostEngine


class HostMetrics(Collector):
    """Pending updates, the reboot flag and the state (one series per state, 1 for the current one)."""

    def __init__(self, engine: HostEngine) -> None:
        """Collect from `engine` on every scrape."""
        self.engine = engine

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("dockmaster_host_pending_updates", "Packages the last check found upgradable",
                              labels=["host"]),
            GaugeMetricFamily("dockmaster_host_reboot_required", "1 when the host needs a reboot", labels=["host"]),
            GaugeMetricFamily("dockmaster_host_state", "1 for the host's current state, 0 for the others",
                              labels=["host", "state"]),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per configured host (and per state for `dockmaster_host_state`)."""
        pending, reboot, state = self._families()
        for name in sorted(self.engine.conf):
            status = self.engine.states.get(name)
            pending.add_metric([name], float(len(status.pending)))
            reboot.add_metric([name], 1.0 if status.reboot_required else 0.0)
            for candidate in STATES:
                state.add_metric([name, candidate], 1.0 if status.state == candidate else 0.0)
        yield from (pending, reboot, state)
