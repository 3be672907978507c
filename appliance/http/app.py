"""The app factory: build the appliance, set up addons, and tie every resource to `cleanup_ctx`."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from ..auth import AuthManager
from ..bus import MATCH_ALL
from ..config import CheckResult, check_config, data_dir_for
from ..core import Appliance
from ..errors import ConfigError, Conflict
from ..events import ApplianceStarted, Event
from ..keys import APPLIANCE_KEY, AUTH_KEY, LIVE_KEY, TLS_KEY
from ..loader import async_setup_addons
from ..onboarding import register as register_onboarding
from ..reload import sighup_ctx
from . import api, config_api, views
from .live import LiveHub
from .middlewares import auth_middleware, error_middleware, forwarded_middleware, security_headers
from .tls import CertificateStore
from .ui import STATIC_DIR

_LOGGER = logging.getLogger(__name__)
CLIENT_MAX_SIZE = 1024 * 1024 + 4096


def core_errors(checked: CheckResult) -> list[str]:
    """Problems in the core blocks (dockmaster, http, auth): these stop the appliance."""
    return [str(i) for i in checked.issues if i.path.split(".")[0].split("[")[0] in ("dockmaster", "http", "auth", "")]


def _domain_error(checked: CheckResult, domain: str) -> str:
    """Why a domain's block is refused, for the banner: its first problem and how many more."""
    issues = [i for i in checked.issues if i.path == domain or i.path.startswith((f"{domain}.", f"{domain}["))]
    if not issues:
        return "configuration is invalid (see config errors)"
    more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"configuration is invalid: {issues[0]}{more}"


async def async_build_appliance(checked: CheckResult, *, oneshot: bool = False) -> Appliance:
    """Open the store and set up every addon; the caller starts and stops it."""
    app = Appliance(checked, oneshot=oneshot)
    if not await app.async_run_blocking(app.lock_data_dir):
        if oneshot:
            # Two processes deploying one stack race each other, and the daemon's view of the stack
            # would go stale (its drift check would then "heal" the CLI's deploy away).
            raise Conflict(f"a Dockmaster daemon is running on {app.data_dir}: deploy through it (the UI, or "
                           "POST /api/v1/stacks/<name>/deploy), or stop it first")
        _LOGGER.warning("Another Dockmaster process uses %s; crash recovery is left to it", app.data_dir)
    await app.store.async_open()
    if app.primary:
        interrupted = await app.store.mark_interrupted()
        if interrupted:
            _LOGGER.warning("%d run(s) were interrupted by the last shutdown", interrupted)

    def _history(event: Event) -> None:
        if event.type != "run_log":
            app.store.record_event(event.type, event.as_dict())

    app.bus.async_listen(MATCH_ALL, _history)
    for issue in checked.issues:
        _LOGGER.error("Config: %s", issue)
    for warning in checked.warnings:
        _LOGGER.warning("Config: %s", warning)
    invalid = {d: _domain_error(checked, d) for d in checked.invalid_domains}
    configured = {d: v for d, v in checked.domains.items() if d not in ("dockmaster", "http", "auth")}
    api.register(app.api)
    views.register(app.api)
    register_onboarding(app.api)
    config_api.register(app.api)
    await async_setup_addons(app, configured, invalid)
    if app.primary and not oneshot:
        app.scheduler.add_cron("core.retention", app.retention.conf["prune"], app.retention.async_prune,
                               jitter=60, timeout=1800)
    return app


def certificate_store(checked: CheckResult) -> CertificateStore | None:
    """The certificate store for `http.tls`, loaded (blocks: file I/O); None without `http.tls`.

    Raises ConfigError when the files cannot be read or do not match: serving plain http instead
    would hand out sign-in cookies over an unencrypted connection.
    """
    http_conf = checked.domains.get("http", {})
    if not http_conf.get("tls"):
        return None
    core = checked.domains.get("dockmaster", {})
    store = CertificateStore(http_conf["tls"], data_dir_for(checked.path.resolve(), core), name=core.get("name", ""),
                             host=http_conf.get("host", ""), base_url=http_conf.get("base_url"))
    try:
        store.load()
    except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
        raise ConfigError(f"http.tls: cannot load the certificate: {err}") from err
    return store


async def create_app(config_path: Path, *, checked: CheckResult | None = None,
                     tls: CertificateStore | None = None) -> web.Application:
    """Build the web application for `config_path` (core config errors raise ConfigError).

    `tls` is the loaded certificate store the server was started with; without it one is made here
    when `http.tls` is set (`webapp[TLS_KEY].server_context` then serves HTTPS).
    """
    import asyncio

    loop = asyncio.get_running_loop()
    if checked is None:
        checked = await loop.run_in_executor(None, check_config, config_path)
    errors = core_errors(checked)
    if errors:
        raise ConfigError("invalid core configuration", details={"issues": errors})
    if tls is None:
        tls = await loop.run_in_executor(None, certificate_store, checked)
    appliance = await async_build_appliance(checked)
    appliance.tls = tls
    http_conf = appliance.http_conf
    webapp = web.Application(
        middlewares=[error_middleware, forwarded_middleware, auth_middleware],
        client_max_size=CLIENT_MAX_SIZE,
    )
    webapp.on_response_prepare.append(security_headers)
    webapp[APPLIANCE_KEY] = appliance
    webapp[TLS_KEY] = tls
    auth = webapp[AUTH_KEY] = AuthManager(
        appliance.auth_conf,
        idle_timeout=http_conf["session_idle_timeout"].total_seconds(),
        max_age=http_conf["session_max_age"].total_seconds(),
    )
    await auth.async_load(appliance.store)
    webapp[LIVE_KEY] = LiveHub(appliance.bus)
    appliance.ui.setup(webapp)
    appliance.api.install(webapp)
    webapp.router.add_static("/static", STATIC_DIR, append_version=True)
    webapp.cleanup_ctx.append(_appliance_ctx)
    webapp.cleanup_ctx.append(sighup_ctx)
    announce_bootstrap(auth.issue_bootstrap_token())
    return webapp


def announce_bootstrap(token: str | None) -> None:
    """Show the one-time bootstrap token on the console, never through logging.

    Log handlers may feed files or collectors; the token goes to stderr once and only its hash is
    kept. It exists only while neither users nor tokens are configured, so nobody who could read
    this process's output through the API exists yet.
    """
    if token is None:
        return
    _LOGGER.warning("No user or token is configured: the one-time bootstrap token is printed on the console")
    print(f"\nDockmaster: no user is configured. Sign in once at /login with the bootstrap token\n\n    {token}\n\n"
          "and create the first user on the setup page that follows.\n", file=sys.stderr, flush=True)


async def _appliance_ctx(webapp: web.Application) -> AsyncIterator[None]:
    """Start addons' loops and the scheduler; stop them and close the store on shutdown."""
    appliance = webapp[APPLIANCE_KEY]
    await appliance.async_start()
    appliance.bus.async_fire(ApplianceStarted(version=appliance.version, addons=sorted(appliance.loaded_addons)))
    tls = webapp[TLS_KEY]
    async with tls.async_watching() if tls else contextlib.nullcontext():
        yield
    webapp[AUTH_KEY].close()
    await webapp[LIVE_KEY].async_close()
    await appliance.async_stop()
    await appliance.store.async_close()
