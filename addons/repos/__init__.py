"""Git repositories: clone and fetch the tracked branch (https token, ssh deploy key, local path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.core import Appliance

from . import api, deploykey, services, views
from .contract import REPOS
from .manager import RepoManager
from .repo import Repo, SyncResult
from .schema import CONFIG_SCHEMA, RepoConfig
from .services import MANAGER_KEY

DOMAIN = "repos"

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "Repo", "RepoManager", "SyncResult", "async_setup"]


async def async_setup(app: Appliance, conf: list[RepoConfig]) -> bool:
    """Load each repo's last status, register routes, the UI page, polls and the startup sync."""
    keys: dict[str, dict[str, Any]] = {}
    resolved = []
    for entry in conf:
        entry, key = await app.async_run_blocking(deploykey.resolve, entry, app.data_dir, app.name)
        resolved.append(entry)
        if key:
            keys[entry["name"]] = key
    manager = RepoManager(app, resolved)
    for name, key in keys.items():
        manager.get(name).deploy_key = key
    await manager.async_load()
    app.data[REPOS] = manager
    app.data[MANAGER_KEY] = manager
    services.register(app, manager)

    app.api.get("/api/v1/repos", api.async_list, auth="read", summary="Repos and their last fetched revision",
                tags=["repos"])
    app.api.get("/api/v1/repos/{name}", api.async_show, auth="read",
                summary="One repo: last sync, and the public deploy key with where to paste it", tags=["repos"])
    app.api.post("/api/v1/repos/{name}/sync", api.async_sync, auth="deploy", summary="Sync a repo now",
                 tags=["repos"], responses={202: "the sync is queued; `run_id` names its run"})
    app.api.get("/repos", views.async_page, auth="read", summary="Repos", kind="ui")
    app.api.get("/repos/{name}", views.async_repo_page, auth="read", summary="Repo", kind="ui")
    app.api.post("/repos/{name}/sync", views.async_sync_form, auth="deploy", summary="Sync a repo now (UI)",
                 kind="ui")
    app.ui.add_nav("Repos", "/repos", order=20)
    app.ui.add_templates(Path(__file__).parent / "templates")

    manager.start_polls()
    if not app.oneshot:
        app.on_start(manager.async_startup)
    app.on_stop(manager.async_stop)
    return True
