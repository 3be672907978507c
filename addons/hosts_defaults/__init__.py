"""Values every entry of `hosts:` inherits unless it sets its own (user, key, known_hosts, become, window)."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from appliance import cv
from appliance.core import Appliance

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "INHERITED", "async_setup", "with_defaults"]

DOMAIN = "hosts_defaults"

# The built-in defaults of these keys live here, so a host without the key and without a
# `hosts_defaults:` block gets exactly what it got before the block existed.
CONFIG_SCHEMA = vol.Schema({
    vol.Optional("user", default="root"): cv.string,
    vol.Optional("port", default=22): cv.port,
    vol.Optional("ssh_key"): cv.path,
    vol.Optional("known_hosts"): cv.path,
    vol.Optional("become", default="none"): cv.one_of("none", "sudo"),
    vol.Optional("window"): cv.slug,
    vol.Optional("host_key_check", default="strict"): cv.one_of("strict", "accept-new"),
})
INHERITED = ("user", "port", "ssh_key", "known_hosts", "become", "window", "host_key_check")


def with_defaults(host: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A host entry with every inherited key it does not set taken from `defaults`."""
    merged = {key: defaults[key] for key in INHERITED if key in defaults}
    merged.update({key: value for key, value in host.items() if value is not None})
    return merged


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Nothing to start: the hosts addon reads the validated block when it sets up."""
    return True
