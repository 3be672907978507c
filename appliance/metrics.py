"""Prometheus metrics: a registry per appliance, fed by bus listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest

from . import __version__
from .bus import MATCH_ALL
from .events import Event, RunFinished

if TYPE_CHECKING:
    from .core import Appliance


class Metrics:
    """Counters of runs and events; addons add their own on `registry`."""

    def __init__(self, app: Appliance) -> None:
        """Create the collectors and subscribe to the bus."""
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        Info("dockmaster", "Dockmaster build information", registry=self.registry).info(
            {"version": __version__, "name": app.name}
        )
        self.runs = Counter(
            "dockmaster_runs", "Finished runs by kind and status", ["kind", "status"], registry=self.registry
        )
        self.events = Counter("dockmaster_events", "Events fired by type", ["type"], registry=self.registry)
        Gauge("dockmaster_active_runs", "Runs in progress", registry=self.registry).set_function(
            lambda: len(app.runs.active)
        )
        Gauge("dockmaster_addons_failed", "Addons disabled by an error", registry=self.registry).set_function(
            lambda: len(app.addon_errors)
        )
        Gauge("dockmaster_store_pending_writes", "Writes queued for the store", registry=self.registry).set_function(
            lambda: app.store.stats.pending
        )
        app.bus.async_listen(MATCH_ALL, self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.type == "run_log":
            return
        self.events.labels(event.type).inc()
        if isinstance(event, RunFinished):
            self.runs.labels(event.kind, event.status).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
