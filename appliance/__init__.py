"""Dockmaster appliance core: config, addons, bus, store, scheduler, HTTP, auth and CLI."""

from __future__ import annotations

__version__ = "0.1.0"
