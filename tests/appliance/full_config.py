"""A config that turns on every built-in addon, for tests that enumerate routes, schemas and docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import addons
from appliance.loader import AddonRegistry, _default_config

ADDONS_DIR = Path(addons.__file__).parent

# Addons whose empty block would register nothing worth checking get a small real block here.
MINIMAL: dict[str, Any] = {
    "windows": {"nightly": {"cron": "0 2 * * *", "duration": "3h"}},
}


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
        if _default_config(addon) is None:
            problems.append(f"{domain}: needs a block in tests/appliance/full_config.py MINIMAL")
            continue
        config[domain] = {} if isinstance(_default_config(addon), dict) else []
    assert not problems, "addons that cannot be loaded with a minimal config:\n" + "\n".join(problems)
    return config
