"""The notifier: a bus listener that only enqueues, and one sender task per target with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from appliance.bus import MATCH_ALL
from appliance.config import ConfigIssue
from appliance.events import Event
from appliance.windows import MaintenanceWindow

from .history import Delivery, DeliveryLog
from .messages import UNNOTIFIABLE, Message, compose, make_test_message
from .pending import PendingStore
from .redact import install_log_redaction, redact_url, secret_pieces
from .runner import STARTUP_ALLOWANCE, ChildFailed, async_run_child, async_validate
from .targets import Service, Target

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
_MAX_BACKOFF = 300.0
_DRAIN_AT_STOP = 2.0


class NotifyEngine:
    """Routes bus events to targets; a slow or dead target only ever delays its own queue."""

    def __init__(self, app: Appliance, conf: list[dict[str, Any]]) -> None:
        """Prepare targets from the validated `notify:` list; nothing is sent before `async_start`."""
        self.app = app
        self.conf = conf
        self.log = DeliveryLog(app.store)
        self.pending = PendingStore(app.store)
        self._unsaved: set[str] = set()
        self._save_handle: asyncio.Handle | None = None
        self.targets: dict[str, Target] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._uninstall_redaction: Callable[[], None] | None = None
        self._asset = {"app_id": "Dockmaster", "app_desc": app.name, "app_url": app.link("/")}
        self._deliveries = Counter(
            "dockmaster_notifications", "Notification deliveries by target and outcome", ["target", "outcome"],
            registry=app.metrics.registry,
        )

    # --- setup --------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Register every URL with the redactor, load the Apprise services, listen to the bus."""
        for target_conf in self.conf:
            for url in target_conf["urls"]:
                self.app.redactor.add(*secret_pieces(url))
        # Apprise logs an unparseable URL in full, so redaction is in place before it reads any.
        self._uninstall_redaction = install_log_redaction(self.app.redactor)
        loaded = await self._async_load_all_services()
        for index, (target_conf, services) in enumerate(zip(self.conf, loaded, strict=True)):
            name = target_conf["name"]
            target = Target(name=name, conf=target_conf, services=services, send=self._enqueue,
                            host_tags=self._host_tags, quiet=self._quiet_window(target_conf))
            bad = [s for s in services if s.url is None]
            if bad:
                target.error = "; ".join(f"URL {s.index + 1} ({s.redacted}): {s.error}" for s in bad)
                target.error += ". This target is disabled until the URL is fixed."
                _LOGGER.error("Notification target %s is disabled: %s", name, target.error)
                self.app.checked.issues.append(ConfigIssue(f"notify[{index}].urls", target.error))
                # A half-working target would hide the problem; disable it as a whole.
                for service in services:
                    service.url = None
            self.targets[name] = target
        self._unsubscribe = self.app.bus.async_listen(MATCH_ALL, self.async_handle_event)

    async def _async_load_all_services(self) -> list[list[Service]]:
        """Have Apprise read every URL (out of process; see `runner`)."""
        urls = [url for conf in self.conf for url in conf["urls"]]
        try:
            errors = await async_validate(urls)
        except (ChildFailed, TimeoutError) as err:
            errors = [f"the URL could not be checked: {err or 'timed out'}"] * len(urls)
        found = iter(errors)
        services = []
        for conf in self.conf:
            services.append([
                Service(i, redact_url(url), url if (error := next(found)) is None else None, error)
                for i, url in enumerate(conf["urls"])
            ])
        return services

    def _quiet_window(self, conf: dict[str, Any]) -> MaintenanceWindow | None:
        quiet = conf.get("quiet_hours")
        if not quiet:
            return None
        return MaintenanceWindow(f"notify:{conf['name']}:quiet", quiet["cron"], quiet["duration"], self.app.time_zone)

    def _host_tags(self, host: str) -> list[str]:
        for item in self.app.conf.get("hosts") or []:
            if isinstance(item, dict) and item.get("name") == host:
                return [str(tag) for tag in item.get("tags") or []]
        return []

    # --- lifecycle ----------------------------------------------------------------------

    async def async_start(self) -> None:
        """Take back what the targets held or folded before a restart, then start one sender per target."""
        await self.app.store.flush()  # after a config reload, the previous engine's last save is committed first
        saved = await self.pending.async_load()
        for name, state in saved.items():
            target = self.targets.get(name)
            if target is None:
                _LOGGER.info("Dropping held notifications of %s: the target is no longer configured", name)
                self.pending.forget(name)
            elif target.enabled:
                target.restore(state)
                _LOGGER.info("Target %s: %d held message(s) and %d fold(s) carried over from before the restart",
                             name, len(target.held), len(target.folds))
        for target in self.targets.values():
            target.changed = self._async_target_changed
        for target in self.targets.values():
            if target.enabled:
                self._workers.append(asyncio.create_task(self._async_worker(target), name=f"notify:{target.name}"))

    async def async_stop(self) -> None:
        """Stop listening, give queued messages a moment to go out, then stop the senders."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._async_save_changed()
        for target in self.targets.values():
            target.close()
        queues = [t.queue.join() for t in self.targets.values() if t.enabled and t.queue.qsize()]
        if queues and self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*queues), _DRAIN_AT_STOP)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        if self._uninstall_redaction is not None:
            self._uninstall_redaction()
            self._uninstall_redaction = None

    # --- routing (runs inside `bus.async_fire`: must stay cheap and never wait) ----------

    def async_handle_event(self, event: Event) -> None:
        """Build the message once and offer it to each target whose filters accept the event."""
        if event.type in UNNOTIFIABLE:
            return
        composed = None
        for target in self.targets.values():
            if not target.enabled or not target.accepts(event):
                continue
            if composed is None:
                composed = compose(event, link=self.app.link, redact=self.app.redactor)
            target.offer(composed)

    def _async_target_changed(self, target: Target) -> None:
        # A burst of events changes a target many times in one loop pass; it is written once.
        self._unsaved.add(target.name)
        if self._save_handle is None:
            self._save_handle = asyncio.get_running_loop().call_soon(self._async_save_changed)

    def _async_save_changed(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        for name in sorted(self._unsaved):
            self.pending.save(name, self.targets[name].snapshot())
        self._unsaved.clear()

    def _enqueue(self, target: Target, message: Message) -> None:
        try:
            target.queue.put_nowait(message)
        except asyncio.QueueFull:
            _LOGGER.warning("Notification target %s is backed up; dropped: %s", target.name, message.title)
            self._record(Delivery(target.name, message.event, message.key, message.title, message.severity,
                                  "dropped", 0, "the target's queue is full (it is failing or too slow)"))

    # --- sending ------------------------------------------------------------------------

    async def _async_worker(self, target: Target) -> None:
        while True:
            message = await target.queue.get()
            try:
                self._record(await self.async_deliver(target, message, retries=target.conf["retries"]))
            except Exception:
                _LOGGER.exception("Notification to %s failed unexpectedly", target.name)
            finally:
                target.queue.task_done()

    async def async_deliver(self, target: Target, message: Message, *, retries: int) -> Delivery:
        """Send a message to every URL of a target, retrying failed URLs with exponential backoff."""
        started = time.monotonic()
        timeout = target.conf["timeout"].total_seconds()
        backoff = target.conf["backoff"].total_seconds()
        pending = [s for s in target.services if s.url is not None]
        total = len(pending)
        errors: dict[int, str] = {}
        attempts = 0
        while pending:
            attempts += 1
            results = await asyncio.gather(*(self._async_send_once(s, message, timeout) for s in pending))
            errors = {s.index: err for s, err in zip(pending, results, strict=True) if err}
            pending = [s for s in pending if s.index in errors]
            if not pending or attempts > retries:
                break
            delay = min(backoff * 2 ** (attempts - 1), _MAX_BACKOFF)
            _LOGGER.info("Notification to %s failed (attempt %d), retrying in %.1fs", target.name, attempts, delay)
            await asyncio.sleep(delay)
        failed = len(pending)
        outcome = "sent" if failed == 0 else "failed" if failed == total else "partial"
        error = None
        if failed:
            by_index = {s.index: s for s in target.services}
            error = self.app.redactor("; ".join(f"{by_index[i].redacted}: {e}" for i, e in sorted(errors.items())))
            _LOGGER.warning("Notification to %s %s after %d attempt(s): %s", target.name, outcome, attempts, error)
        return Delivery(target.name, message.event, message.key, message.title, message.severity, outcome,
                        attempts, error, round(time.monotonic() - started, 3))

    async def _async_send_once(self, service: Service, message: Message, timeout: float) -> str | None:  # noqa: ASYNC109 - the per-send limit is configuration
        """One attempt to one URL; returns None on success or the reason it failed."""
        assert service.url is not None
        request = {"op": "send", "urls": [service.url], "title": message.title, "body": message.body,
                   "type": message.notify_type, "timeout": timeout, "asset": self._asset}
        try:
            # The child's sockets time out after `timeout`; the deadline also covers its start.
            [error] = await async_run_child(request, timeout + STARTUP_ALLOWANCE)
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except ChildFailed as err:
            return str(err)
        return error

    def _record(self, delivery: Delivery) -> None:
        self.log.record(delivery)
        self._deliveries.labels(delivery.target, delivery.outcome).inc()

    # --- test notifications ---------------------------------------------------------------

    async def async_test(self, name: str | None, actor: str) -> list[dict[str, Any]]:
        """Send a test message now to one target (or all), one attempt each; returns the outcomes."""
        targets = [self.targets[name]] if name else list(self.targets.values())

        async def _one(target: Target) -> Delivery:
            message = make_test_message(self.app.name, target.name, actor)
            if not target.enabled:
                return Delivery(target.name, message.event, message.key, message.title, message.severity,
                                "failed", 0, target.error or "target is disabled")
            return await self.async_deliver(target, message, retries=0)

        deliveries = await asyncio.gather(*(_one(t) for t in targets))
        for delivery in deliveries:
            self._record(delivery)
        return [d.as_dict() for d in deliveries]
