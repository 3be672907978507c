"""Services: named actions with a voluptuous schema and a scope, called the same way by API, UI, CLI and addons.

Like Home Assistant's service registry: an addon registers `stacks.deploy` with the schema of its
data and the scope a caller needs; callers pass plain data, which is validated before the handler
runs. The handler does the action and writes the audit row (who, from where, what, outcome).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

from .errors import Forbidden, NotFound, ValidationFailed

_LOGGER = logging.getLogger(__name__)
SCOPES = ("read", "deploy", "admin")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


@dataclass(frozen=True)
class ServiceCall:
    """One call of a service: its validated data and who made it, from where, how."""

    name: str
    data: dict[str, Any]
    actor: str
    source: str | None = None
    trigger: str = "manual"  # manual (UI, CLI) | api (a token) | what an addon passes (mqtt, ops…)


Handler = Callable[[ServiceCall], Awaitable[Any]]


@dataclass
class Service:
    """A registered service."""

    name: str
    handler: Handler
    schema: vol.Schema
    scope: str
    description: str = ""
    fields: list[str] = field(default_factory=list)


class ServiceRegistry:
    """Every service the loaded addons offer, by `domain.action` name."""

    def __init__(self) -> None:
        """Start empty; addons register in `async_setup`."""
        self._services: dict[str, Service] = {}

    def register(self, name: str, handler: Handler, *, schema: vol.Schema, scope: str,
                 description: str = "") -> None:
        """Offer `handler` as service `name`, callable by callers holding `scope` (read, deploy, admin)."""
        if scope not in _RANK:
            raise ValueError(f"unknown scope {scope!r}")
        if name in self._services:
            raise ValueError(f"service {name} is already registered")
        self._services[name] = Service(name, handler, schema, scope, description)

    def unregister(self, name: str) -> None:
        """Withdraw a service (its addon is reloaded or torn down)."""
        self._services.pop(name, None)

    def has(self, name: str) -> bool:
        """True when a loaded addon offers `name`."""
        return name in self._services

    def __contains__(self, name: object) -> bool:
        """`"stacks.deploy" in app.services`."""
        return name in self._services

    def get(self, name: str) -> Service:
        """One service; raises NotFound."""
        service = self._services.get(name)
        if service is None:
            raise NotFound(f"no service named '{name}'")
        return service

    def names(self) -> list[str]:
        """Every registered service name."""
        return sorted(self._services)

    async def async_call(self, name: str, data: dict[str, Any] | None = None, *, actor: str,
                         source: str | None = None, trigger: str = "manual", scopes: tuple[str, ...] | None = None,
                         ) -> Any:
        """Validate `data` with the service's schema and run it; `scopes` (when given) must allow it."""
        service = self.get(name)
        if scopes is not None and not any(_RANK.get(s, -1) >= _RANK[service.scope] for s in scopes):
            raise Forbidden(f"service {name} needs the {service.scope} scope")
        try:
            validated = service.schema(data or {})
        except vol.Invalid as err:
            raise ValidationFailed(f"service {name}: {err}") from None
        return await service.handler(ServiceCall(name, dict(validated), actor, source, trigger))
