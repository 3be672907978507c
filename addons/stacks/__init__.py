"""GitOps stacks: git folders become running Compose projects, touched only when their content changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addons.engines.contract import EngineRecovered, EngineUnreachable
from addons.repos.contract import RepoSynced
from appliance.core import Appliance
from appliance.errors import ConfigError

from . import actions, api, views
from .api import SERVICE_KEY
from .contract import STACKS
from .drift import DriftWatcher
from .engine import StackEngine
from .policy import config_summary
from .schema import CONFIG_SCHEMA
from .service import StackService

DOMAIN = "stacks"

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup", "config_summary"]


async def async_setup(app: Appliance, conf: dict[str, Any]) -> bool:
    """Load state, check references, listen to repo syncs, schedule drift checks, offer services and routes."""
    engine = StackEngine(app, conf)
    problems = engine.check_references()
    if problems:
        raise ConfigError("; ".join(problems))
    await engine.async_setup()
    drift = engine.drift = DriftWatcher(engine)
    service = StackService(engine, drift)
    app.data[STACKS] = service
    app.data[SERVICE_KEY] = service
    app.bus.async_listen(RepoSynced, engine.async_on_repo_synced)
    app.bus.async_listen(EngineUnreachable, engine.relocation.async_on_unreachable)
    app.bus.async_listen(EngineRecovered, engine.relocation.async_on_recovered)
    if not app.oneshot:
        app.on_start(engine.async_resume)
    app.scheduler.add_cron("stacks-drift", conf["settings"]["drift_check"], drift.async_job, jitter=10,
                           timeout=300)
    actions.register(app, service)
    api.register(app.api)
    views.register(app.api)
    app.ui.add_nav("Stacks", "/stacks", 20)
    app.ui.add_templates(Path(__file__).parent / "templates")
    return True
