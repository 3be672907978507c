"""A config that turns on every built-in addon, for tests that enumerate routes, schemas and docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

import addons
from appliance.loader import AddonRegistry

ADDONS_DIR = Path(addons.__file__).parent

# Addons whose empty block would register nothing worth checking get a small real block here.
MINIMAL: dict[str, Any] = {
    "windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h"}},
    "mqtt": {"broker": "mqtt://127.0.0.1:9"},  # nothing listens: the bridge retries in the background
}


def _accepted_empty(schema: Any) -> Any:
    """The empty block (`{}` or `[]`) an addon's schema accepts, or None."""
    for empty in ({}, []):
        try:
            schema(empty)
        except vol.Invalid:
            continue
        return empty
    return None


def builtin_domains() -> list[str]:
    """Every package under addons/ (built-ins only, not custom_addons/)."""
    return sorted(p.parent.name for p in ADDONS_DIR.glob("*/__init__.py"))


def full_config() -> dict[str, Any]:
    """One block per built-in addon; fails loudly when an addon cannot be imported or configured."""
    registry = AddonRegistry()
    config: dict[str, Any] = {}
    problems: list[str] = []
    for domain in builtin_domains():
        addon = registry.get(domain)
        if addon is None or addon.module is None:
            problems.append(f"{domain}: {addon.error if addon else 'not found'}")
            continue
        if domain in MINIMAL:
            config[domain] = MINIMAL[domain]
            continue
        empty = _accepted_empty(addon.config_schema)
        if empty is None:
            problems.append(f"{domain}: needs a block in tests/appliance/full_config.py MINIMAL")
            continue
        config[domain] = empty
    assert not problems, "addons that cannot be loaded with a minimal config:\n" + "\n".join(problems)
    return config
