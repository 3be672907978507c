"""The `updates:` block: when the hosts addon checks its fleet and applies updates in waves.

The work (scheduling, waves, the fleet API and page) belongs to the hosts addon; this config domain
validates the block and hands it over through `addons.hosts.contract`.
"""

from __future__ import annotations

from addons.hosts.contract import FLEET, UPDATES_SCHEMA, UpdatesConfig
from appliance.core import Appliance

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup"]

DOMAIN = "updates"
CONFIG_SCHEMA = UPDATES_SCHEMA


async def async_setup(app: Appliance, conf: UpdatesConfig) -> bool:
    """Hand the validated block to the hosts addon, which schedules checks and fleet waves by it."""
    fleet = app.data.get(FLEET)
    if fleet is None:
        raise ValueError("the hosts addon is not set up (add a hosts: list)")
    fleet.configure(conf)
    return True
