"""JSON API of the repos addon: list repos with their last sync, and request a sync."""

from __future__ import annotations

from aiohttp import web

from appliance.http.identity import actor, client_ip
from appliance.keys import APPLIANCE_KEY, IDENTITY_KEY

from .manager import RepoManager
from .services import MANAGER_KEY


def manager(request: web.Request) -> RepoManager:
    """The RepoManager of the appliance serving this request."""
    result: RepoManager = request.app[APPLIANCE_KEY].data[MANAGER_KEY]
    return result


async def async_list(request: web.Request) -> web.Response:
    """Every repo: clean URL, branch, head and its commit message, last sync status and error, poll."""
    return web.json_response({"repos": manager(request).status()})


async def async_show(request: web.Request) -> web.Response:
    """One repo as in the list, with its deploy key (public half) when Dockmaster generated it."""
    name = request.match_info["name"]
    repos = manager(request)
    repos.get(name)
    return web.json_response(next(item for item in repos.status() if item["name"] == name))


async def async_request(request: web.Request, name: str) -> int:
    """Queue a sync for the caller (manual from the UI, api from a token) and audit it."""
    identity = request.get(IDENTITY_KEY)
    who = actor(request)
    from_ui = bool(identity and identity.session_id)
    reason = f"{'manual' if from_ui else 'API'} sync by {identity.name if identity else who}"
    run_id: int = await request.app[APPLIANCE_KEY].services.async_call(
        "repos.sync", {"name": name, "reason": reason}, actor=who, source=client_ip(request),
        trigger="manual" if from_ui else "api")
    return run_id


async def async_sync(request: web.Request) -> web.Response:
    """Queue a sync of one repo; answers 202 with the id of the run that covers it."""
    run_id = await async_request(request, request.match_info["name"])
    return web.json_response({"run_id": run_id}, status=202)
