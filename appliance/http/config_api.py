"""`POST /api/v1/config/reload`: check the config, then apply it without a restart (admin)."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from ..errors import ConfigError
from ..keys import APPLIANCE_KEY, AUTH_KEY, BODY_KEY
from ..reload import async_reload
from .identity import actor, client_ip
from .routes import RouteTable

RELOAD_BODY = vol.Schema({vol.Optional("wait", default=60): vol.All(vol.Coerce(float), vol.Range(min=0, max=600))})


async def async_reload_config(request: web.Request) -> web.Response:
    """Check first: with any problem nothing changes and each one is answered with its file and line."""
    result = await async_reload(request.app[APPLIANCE_KEY], request.app[AUTH_KEY], actor=actor(request),
                                source=client_ip(request), wait=request[BODY_KEY]["wait"])
    if not result.ok:
        raise ConfigError(f"the config has {len(result.errors)} problem(s); nothing was changed",
                          details={"issues": result.errors})
    return web.json_response(result.as_dict())


def register(routes: RouteTable) -> None:
    """Declare the reload route."""
    routes.post("/api/v1/config/reload", async_reload_config, auth="admin", summary="Check and reload the config",
                body=RELOAD_BODY, tags=["config"],
                responses={400: "the config has problems (details.issues: path, message, file, line)",
                           409: "runs still running after `wait` seconds; nothing changed"})
