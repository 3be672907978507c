"""The UI registry (navigation, addon template folders) and the rendering helper for pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..keys import APPLIANCE_KEY, AUTH_KEY, IDENTITY_KEY

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"


@dataclass(order=True)
class NavEntry:
    """A link in the navigation bar."""

    order: int
    title: str = field(compare=False)
    path: str = field(compare=False)


@dataclass
class DashboardCard:
    """A card an addon adds to the dashboard: its template and what it shows (None: nothing to show)."""

    name: str
    template: str
    provider: Callable[[], Awaitable[dict[str, Any] | None]]


class UiRegistry:
    """Collects navigation entries and template folders from the core and the addons."""

    def __init__(self) -> None:
        """Start with the core pages."""
        self.nav: list[NavEntry] = [NavEntry(0, "Dashboard", "/"), NavEntry(90, "Runs", "/runs"),
                                    NavEntry(95, "Audit", "/audit")]
        self.template_dirs: list[Path] = [TEMPLATES_DIR]
        self.cards: list[DashboardCard] = []

    def add_nav(self, title: str, path: str, order: int = 50) -> None:
        """Add a navigation link."""
        self.nav.append(NavEntry(order, title, path))

    def add_card(self, name: str, template: str, provider: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        """Add a dashboard card: `template` is rendered with `card` (the provider's dict) when it is not None."""
        self.cards.append(DashboardCard(name, template, provider))

    def add_templates(self, folder: Path) -> None:
        """Make an addon's `templates/` folder available (names should start with the domain)."""
        self.template_dirs.append(folder)

    def setup(self, app: web.Application) -> None:
        """Install the Jinja environment (autoescape on) on the aiohttp app."""
        env = aiohttp_jinja2.setup(
            app,
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(d)) for d in self.template_dirs]),
            autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
            undefined=jinja2.StrictUndefined,
        )
        env.filters["when"] = _when
        env.filters["duration"] = _duration
        env.filters["short"] = lambda rev: (rev or "")[:7]


def _when(ts: float | None) -> str:
    if not ts:
        return "—"
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _duration(run: dict[str, Any]) -> str:
    start, end = run.get("started"), run.get("finished")
    if not start:
        return "—"
    import time

    seconds = (end or time.time()) - start
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """Render a page with the shared context: nav, identity, CSRF token, addon error banners."""
    app = request.app[APPLIANCE_KEY]
    identity = request.get(IDENTITY_KEY)
    base = {
        "app_name": app.name,
        "version": app.version,
        "nav": sorted(app.ui.nav),
        "path": request.path,
        "identity": identity,
        "csrf_token": identity.csrf if identity and identity.csrf else "",
        "addon_errors": list(app.addon_errors.values()),
        "config_issues": [str(i) for i in app.checked.issues],
        "needs_setup": request.app[AUTH_KEY].needs_setup,
    }
    base.update(context)
    response = aiohttp_jinja2.render_template(template, request, base, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
