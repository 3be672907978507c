"""Fleet hosts over SSH: checks, updates and verified reboots with a persisted state machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from addons.hosts_defaults.contract import CONFIG_SCHEMA as DEFAULTS_SCHEMA
from addons.hosts_defaults.contract import DOMAIN as DEFAULTS
from addons.hosts_defaults.contract import with_defaults
from appliance import cv
from appliance.core import Appliance

from .const import DOMAIN, ENGINE_KEY, PACKAGE_MANAGERS
from .contract import FLEET, HOSTS
from .engine import HostEngine
from .fleet import FleetUpdater
from .metrics import HostMetrics

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup"]


def _absolute(value: Any) -> str:
    text = cv.string(value).strip()
    if not text.startswith("/") or "\x00" in text:
        raise vol.Invalid(f"compose path must be absolute on the host, got '{text}'")
    return text


TIMEOUTS_SCHEMA = vol.Schema({
    vol.Optional("connect", default="15s"): cv.positive_duration,
    vol.Optional("command", default="600s"): cv.positive_duration,
    vol.Optional("lock", default="120s"): cv.positive_duration,
    vol.Optional("reboot", default="600s"): cv.positive_duration,
    vol.Optional("keepalive", default="15s"): cv.positive_duration,
})

HOST_SCHEMA = vol.Schema({
    vol.Required("name"): cv.slug,
    vol.Required("address"): cv.host,
    # port, user, ssh_key, known_hosts, become, window and host_key_check default to `hosts_defaults:`.
    vol.Optional("port"): cv.port,
    vol.Optional("user"): cv.string,
    vol.Optional("ssh_key"): cv.path,
    vol.Optional("known_hosts"): cv.path,
    vol.Optional("become"): cv.one_of("none", "sudo"),
    vol.Optional("tags", default=[]): cv.ensure_list_of(cv.slug),
    vol.Optional("package_manager", default="auto"): cv.one_of("auto", *PACKAGE_MANAGERS),
    vol.Optional("auto_reboot", default=False): cv.boolean,
    vol.Optional("window"): cv.slug,
    vol.Optional("compose_paths", default=[]): cv.ensure_list_of(_absolute),
    vol.Optional("host_key_check"): cv.one_of("strict", "accept-new"),
    vol.Optional("upgrade", default="upgrade"): cv.one_of("upgrade", "dist-upgrade"),
    vol.Optional("timeouts", default={}): TIMEOUTS_SCHEMA,
})

CONFIG_SCHEMA = vol.Schema(vol.All(cv.ensure_list, [HOST_SCHEMA], cv.unique_names()))


async def async_setup(app: Appliance, conf: list[dict[str, Any]]) -> bool:
    """Apply `hosts_defaults:`, load host states and register the API, the UI pages and the `hosts.*` services.

    The fleet's checks and waves wait for an `updates:` block (`FLEET.configure`, called by that domain).
    """
    from . import actions, api, views

    if DEFAULTS in app.checked.invalid_domains:
        raise ValueError("hosts_defaults: has errors; hosts would run with the wrong user, key or window")
    defaults = app.conf[DEFAULTS] if DEFAULTS in app.conf else DEFAULTS_SCHEMA({})
    conf = [with_defaults(host, defaults) for host in conf]
    for host in conf:
        if host.get("window") and app.window(host["window"]) is None:
            raise ValueError(f"host '{host['name']}': window '{host['window']}' is not configured under windows:")
    engine = HostEngine(app, conf, app.data_dir / "known_hosts")  # type: ignore[arg-type]
    await engine.async_load()
    actions.register(app, engine)
    app.data[HOSTS] = engine
    app.data[ENGINE_KEY] = engine
    app.data[FLEET] = FleetUpdater(app, engine)
    app.metrics.registry.register(HostMetrics(engine))
    app.on_stop(engine.async_stop)
    api.register(app)
    views.register(app)
    app.ui.add_templates(Path(__file__).parent / "templates")
    app.ui.add_nav("Hosts", "/hosts", 40)
    return True
