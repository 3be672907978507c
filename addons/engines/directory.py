"""The configured engines: links added to the core's engine registry, their health, file delivery."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from appliance.errors import ConfigError, Conflict

from .delivery import async_deliver
from .links import SshEngine, SshTarget, TlsEngine, prepare_cert_dir
from .monitor import EngineMonitor, EngineStatus

if TYPE_CHECKING:
    from appliance.core import Appliance
    from appliance.services import ServiceCall

_LOGGER = logging.getLogger(__name__)


class EngineDirectory:
    """Adds each configured engine to `app.engines`, watches them all, and copies files to SSH engines."""

    def __init__(self, app: Appliance, conf: list[dict[str, Any]]) -> None:
        """Bind the validated `engines:` list; nothing is opened yet."""
        self.app = app
        self.conf = {entry["name"]: entry for entry in conf}
        self.monitor = EngineMonitor(app, {name: e["check_interval"].total_seconds() for name, e in self.conf.items()})

    async def async_setup(self) -> None:
        """Build each link and add it to the core's registry (TLS files are copied under the CLI's names)."""
        for name, entry in self.conf.items():
            self.app.engines.add(await self._async_link(name, entry))

    async def _async_link(self, name: str, entry: dict[str, Any]) -> TlsEngine | SshEngine:
        url = entry.get("url")
        default_known = self.app.data_dir / "known_hosts"
        if url and url.startswith("tcp://"):
            folder = self.app.data_dir / "engines" / name / "tls"
            cert_dir = await self.app.async_run_blocking(prepare_cert_dir, entry["tls"], folder)
            stacks_dir = entry.get("stacks_dir") or str(self.app.data_dir / "stacks")
            return TlsEngine(name, url, cert_dir, stacks_dir=stacks_dir)
        if url:
            target = SshTarget.from_url(url, ssh_key=entry.get("ssh_key"),
                                        known_hosts=Path(entry.get("known_hosts") or default_known))
        else:
            target = self._host_target(entry)
        return SshEngine(name, target, socket=entry["socket"], stacks_dir=entry.get("stacks_dir"))

    def _host_target(self, entry: dict[str, Any]) -> SshTarget:
        """The login of a `hosts:` entry (its known_hosts unless the engine names its own)."""
        # Imported here: loading the hosts addon's package costs memory a config without `host:` never needs.
        from addons.hosts.contract import HOSTS

        fleet = self.app.data.get(HOSTS)
        host = (fleet.conf if fleet is not None else {}).get(entry["host"])
        if host is None:
            raise ConfigError(f"engine {entry['name']}: no host named '{entry['host']}' in hosts:")
        known = entry.get("known_hosts") or host.get("known_hosts") or self.app.data_dir / "known_hosts"
        return SshTarget(host["address"], host["port"], host["user"], entry.get("ssh_key") or host.get("ssh_key"),
                         Path(known))

    async def async_teardown(self) -> None:
        """Stop checking, remove the engines from the registry and close their links."""
        await self.monitor.async_stop()
        for name in self.conf:
            link = self.app.engines.remove(name)
            client = self.app.engines.forget_client(name)
            if client is not None:
                await self.app.async_run_blocking(client.close)
            if link is not None:
                await link.async_close()

    # --- EngineFleet --------------------------------------------------------------------------

    def reachable(self, name: str) -> bool | None:
        """Whether the engine answered at its last check."""
        return self.monitor.reachable(name)

    def poke(self, name: str) -> None:
        """Check an engine soon."""
        self.monitor.poke(name)

    async def async_deliver(self, name: str, local: Path, remote: PurePosixPath, files: list[str],
                            removed: list[str]) -> int:
        """Copy stack files to an SSH engine's host."""
        link = self.app.engines.get(name)
        if not isinstance(link, SshEngine):
            raise Conflict(f"engine {name} takes no files (only engines reached over SSH do)")
        async with await link.async_sftp() as sftp:
            return await async_deliver(sftp, local, remote, files, removed)

    # --- read models and the check service ---------------------------------------------------

    def describe(self, status: EngineStatus) -> dict[str, Any]:
        """One engine as the API shows it."""
        link = self.app.engines.get(status.name)
        files = link.files
        entry = self.conf.get(status.name, {})
        return {**status.as_dict(), "kind": "local" if files is None else ("ssh" if files.delivers else "tls"),
                "host": entry.get("host"), "stacks_dir": str(files.root) if files else None}

    async def async_check_service(self, call: ServiceCall) -> dict[str, Any]:
        """`engines.check`: check one engine (or all) now."""
        name = call.data.get("name")
        self.app.store.audit(call.actor, "engine.check", name or "all", source=call.source)
        if name:
            self.app.engines.get(name)
            statuses = [await self.monitor.async_check(name)]
        else:
            statuses = await self.monitor.async_check_all(force=True)
        return {"engines": [self.describe(s) for s in statuses]}
