"""UI page of the repos addon: the repos list with a "Sync now" button per repo."""

from __future__ import annotations

from aiohttp import web

from appliance.http.ui import render

from .api import async_request, manager


async def async_page(request: web.Request) -> web.Response:
    """The repos list: branch, head commit, last sync, and a Sync now form (CSRF token included)."""
    return render(request, "repos_list.html", {"repos": manager(request).status()})


async def async_repo_page(request: web.Request) -> web.Response:
    """One repo: remote, last sync, and the deploy key to paste into the forge with a copy button."""
    name = request.match_info["name"]
    repos = manager(request)
    repos.get(name)
    repo = next(item for item in repos.status() if item["name"] == name)
    return render(request, "repos_repo.html", {"repo": repo})


async def async_sync_form(request: web.Request) -> web.StreamResponse:
    """The Sync now button: queue the sync, then show its run."""
    run_id = await async_request(request, request.match_info["name"])
    raise web.HTTPSeeOther(f"/runs/{run_id}")
