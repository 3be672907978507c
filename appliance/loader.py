"""Addon discovery and setup: `addons/<domain>/` packages, checked manifests, guarded `async_setup`."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import voluptuous as vol

import addons

from .const import ADDON_SETUP_TIMEOUT, CORE_DOMAINS

if TYPE_CHECKING:
    from .core import Appliance

_LOGGER = logging.getLogger(__name__)

MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): str,
        vol.Required("name"): str,
        vol.Required("documentation"): str,
        vol.Optional("dependencies", default=[]): [str],
        vol.Optional("after_dependencies", default=[]): [str],
        vol.Optional("version"): str,
    }
)


@runtime_checkable
class AddonProtocol(Protocol):
    """What an addon package exports."""

    DOMAIN: str
    CONFIG_SCHEMA: vol.Schema

    async def async_setup(self, app: Appliance, conf: Any) -> bool:
        """Wire the addon into the appliance; return True when it is ready."""


@dataclass
class Addon:
    """A discovered addon: its manifest and module, or why it could not be loaded."""

    domain: str
    manifest: dict[str, Any] = field(default_factory=dict)
    module: ModuleType | None = None
    error: str | None = None

    @property
    def config_schema(self) -> vol.Schema:
        """The addon's config schema."""
        assert self.module is not None
        return self.module.CONFIG_SCHEMA

    @property
    def dependencies(self) -> list[str]:
        """Domains that must be set up first."""
        return list(self.manifest.get("dependencies", []))

    @property
    def after(self) -> list[str]:
        """Domains set up first when they are configured."""
        return list(self.manifest.get("after_dependencies", []))


def validate_manifest(path: Path, folder: str) -> dict[str, Any]:
    """Read and check a manifest.json; its domain must equal its folder name."""
    data = json.loads(path.read_text(encoding="utf-8"))
    manifest: dict[str, Any] = MANIFEST_SCHEMA(data)
    if manifest["domain"] != folder:
        raise vol.Invalid(f"manifest domain '{manifest['domain']}' does not match folder '{folder}'")
    return manifest


class AddonRegistry:
    """Finds addons on the `addons` package path (built-ins and `custom_addons/`)."""

    def __init__(self, config_dir: Path | None = None) -> None:
        """Extend the addon search path with `<config_dir>/custom_addons` when present."""
        if config_dir is not None:
            custom = (config_dir / "custom_addons").resolve()
            if custom.is_dir() and str(custom) not in addons.__path__:
                addons.__path__.append(str(custom))
                importlib.invalidate_caches()  # a folder created moments ago must be seen
        self._cache: dict[str, Addon] = {}
        self._platforms_loaded: set[str] = set()

    def available(self) -> list[str]:
        """Every domain found on the search path."""
        return sorted(
            name for _, name, is_pkg in pkgutil.iter_modules(addons.__path__) if is_pkg
        )

    def get(self, domain: str) -> Addon | None:
        """Load an addon's manifest and module; None when no such package exists."""
        if domain in self._cache:
            return self._cache[domain]
        if domain in CORE_DOMAINS or not domain.isidentifier():
            return None
        folder = next(
            (Path(p) / domain for p in addons.__path__ if (Path(p) / domain / "__init__.py").is_file()),
            None,
        )
        if folder is None:
            return None
        addon = Addon(domain)
        try:
            addon.manifest = validate_manifest(folder / "manifest.json", domain)
            addon.module = importlib.import_module(f"addons.{domain}")
            if not isinstance(addon.module, AddonProtocol):
                raise TypeError("module must export DOMAIN, CONFIG_SCHEMA and async_setup")
            if domain != addon.module.DOMAIN:
                raise TypeError(f"DOMAIN '{addon.module.DOMAIN}' does not match folder '{domain}'")
        except FileNotFoundError:
            addon.error = "addon has no manifest.json"
        except Exception as err:
            _LOGGER.exception("Cannot load addon %s", domain)
            addon.error = f"cannot load addon: {err}"
            sys.modules.pop(f"addons.{domain}", None)
        self._cache[domain] = addon
        return addon


    def load_platforms(self) -> None:
        """Load every addon's `events` and `notify` platform modules (event types, message texts).

        They are small and register themselves: a notify target may name an event of any addon,
        and check-config must know every event name before the addon that fires it is set up. They
        are loaded from their files without the addon's package, whose imports (docker, asyncssh,
        aiomqtt…) an addon that is not configured never needs; the package finds them when it loads.
        """
        from . import messages

        for domain in self.available():
            if domain in self._platforms_loaded:
                continue
            self._platforms_loaded.add(domain)
            folder = next((Path(p) / domain for p in addons.__path__ if (Path(p) / domain / "__init__.py").is_file()),
                          None)
            if folder is None:
                continue
            for platform in ("events", "notify"):
                try:
                    module = _load_platform(domain, platform, folder / f"{platform}.py")
                except Exception:
                    _LOGGER.exception("Cannot load the %s platform of addon %s", platform, domain)
                    continue
                if module is not None and platform == "notify":
                    messages.register(getattr(module, "MESSAGES", {}), success=getattr(module, "SUCCESS", frozenset()),
                                      severity=getattr(module, "SEVERITY", None))

    def load_cli(self, sub: Any, with_config: Callable[[Any], Any]) -> None:
        """Let each addon's `cli` platform module add its verbs to the `dockmaster` parser."""
        for domain in self.available():
            name = f"addons.{domain}.cli"
            try:
                if importlib.util.find_spec(name) is None:
                    continue
                importlib.import_module(name).register(sub, with_config)
            except Exception:
                _LOGGER.exception("Cannot load the command-line verbs of addon %s", domain)


def _load_platform(domain: str, platform: str, path: Path) -> ModuleType | None:
    """A platform module by its file; one that imports its own package's modules is imported normally."""
    name = f"addons.{domain}.{platform}"
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:
        # A relative import (`from .models import …`): this platform needs its package after all.
        del sys.modules[name]
        return importlib.import_module(name)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def setup_order(domains: list[str], registry: AddonRegistry) -> list[str]:
    """Order domains so dependencies (and configured after-dependencies) come first."""
    order: list[str] = []
    visiting: set[str] = set()
    wanted = set(domains)

    def visit(domain: str) -> None:
        if domain in order or domain in visiting:
            return
        visiting.add(domain)
        addon = registry.get(domain)
        if addon is not None and addon.module is not None:
            for dep in addon.dependencies:
                visit(dep)
            for dep in addon.after:
                if dep in wanted:
                    visit(dep)
        visiting.discard(domain)
        order.append(domain)

    for domain in sorted(domains):
        visit(domain)
    return order


async def async_setup_addons(app: Appliance, configured: dict[str, Any], invalid: dict[str, str]) -> None:
    """Set up every configured addon (and its dependencies) in order; failures disable one addon."""
    registry = AddonRegistry(app.config_path.parent)
    registry.load_platforms()
    for domain, error in invalid.items():
        app.addon_failed(domain, error)
    for domain in setup_order([d for d in configured if d not in invalid], registry):
        addon = registry.get(domain)
        if addon is None or addon.module is None:
            app.addon_failed(domain, (addon.error if addon else None) or "no such addon")
            continue
        failed_deps = [d for d in addon.dependencies if d not in app.loaded_addons]
        if failed_deps:
            app.addon_failed(domain, f"dependency not available: {', '.join(failed_deps)}")
            continue
        conf = configured.get(domain)
        if conf is None:  # a dependency that was not configured gets its defaults
            conf = _default_config(addon)
            if conf is None:
                app.addon_failed(domain, "needed by another addon but not configured")
                continue
        await _async_setup_one(app, addon, conf)


def _default_config(addon: Addon) -> Any:
    """The addon's config built from an empty block (mapping or list), or None."""
    empties: tuple[Any, ...] = ({}, [])
    for empty in empties:
        try:
            return addon.config_schema(empty)
        except vol.Invalid:
            continue
    return None


async def _async_setup_one(app: Appliance, addon: Addon, conf: Any) -> None:
    from .reload import mark, remember

    assert addon.module is not None
    domain = addon.domain
    before = mark(app)  # what the addon registers is recorded, so a config reload can undo it
    try:
        await _async_call_setup(app, addon, conf)
    finally:
        remember(app, domain, before)


async def _async_call_setup(app: Appliance, addon: Addon, conf: Any) -> None:
    assert addon.module is not None
    domain = addon.domain
    try:
        async with asyncio.timeout(ADDON_SETUP_TIMEOUT):
            result = await addon.module.async_setup(app, conf)
    except TimeoutError:
        app.addon_failed(domain, f"setup timed out after {ADDON_SETUP_TIMEOUT:g}s")
        return
    except Exception as err:
        _LOGGER.exception("Error setting up addon %s", domain)
        app.addon_failed(domain, f"setup failed: {type(err).__name__}: {err}")
        return
    if result is not True:
        message = "setup returned False" if result is False else f"setup returned {result!r}, not a bool"
        app.addon_failed(domain, message)
        return
    app.loaded_addons.append(domain)
    _LOGGER.info("Addon %s set up", domain)
