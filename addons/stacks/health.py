"""Reading a compose project's containers with the docker SDK: the health gate, drift and adoption."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .compose import CONFIG_HASH_LABEL, PROJECT_LABEL, SERVICE_LABEL


@dataclass
class ContainerView:
    """What the health gate and drift check need to know about one container."""

    id: str
    name: str
    service: str
    state: str
    health: str | None
    exit_code: int
    restart_policy: str
    config_hash: str | None


@dataclass
class HealthReport:
    """The verdict of one look at a project: ready, failed (with why) or still waiting."""

    ready: bool = False
    failed: str | None = None
    waiting: list[str] = field(default_factory=list)


def list_project(client: Any, project: str) -> list[ContainerView]:
    """Every container of a compose project, inspected (blocks: docker SDK, run in an executor)."""
    import docker.errors

    views = []
    for summary in client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}):
        try:
            attrs = client.api.inspect_container(summary["Id"])
        except docker.errors.NotFound:
            continue  # removed between the listing and the inspect (compose recreating it)
        state = attrs.get("State", {})
        labels = attrs.get("Config", {}).get("Labels") or {}
        health = state.get("Health", {}).get("Status") if state.get("Health") else None
        views.append(ContainerView(
            id=attrs["Id"], name=attrs.get("Name", "").lstrip("/"), service=labels.get(SERVICE_LABEL, "?"),
            state=state.get("Status", "unknown"), health=health, exit_code=int(state.get("ExitCode") or 0),
            restart_policy=(attrs.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name") or "no",
            config_hash=labels.get(CONFIG_HASH_LABEL),
        ))
    return views


def projects_named(client: Any, names: list[str]) -> dict[str, tuple[int, bool]]:
    """Per given compose project name: its container count and whether Dockmaster made them (blocks: docker SDK)."""
    found: dict[str, tuple[int, bool]] = {}
    for name in names:
        containers = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={name}"})
        if containers:
            ours = all((c.get("Labels") or {}).get("io.dockmaster.managed") == "true" for c in containers)
            found[name] = (len(containers), ours)
    return found


def judge(views: list[ContainerView], services: list[str]) -> HealthReport:
    """Every service has a running container and every healthcheck is healthy (one-shot jobs may exit 0)."""
    report = HealthReport()
    by_service: dict[str, list[ContainerView]] = {}
    for view in views:
        by_service.setdefault(view.service, []).append(view)
    for service in services:
        containers = by_service.get(service, [])
        if not containers:
            report.waiting.append(f"{service}: no container yet")
            continue
        for view in containers:
            if view.health == "unhealthy":
                report.failed = f"service {service} is unhealthy (container {view.name})"
                return report
            if view.state in ("exited", "dead"):
                if view.exit_code == 0 and view.restart_policy == "no":
                    continue  # a one-shot job that finished
                if view.restart_policy == "no" or view.state == "dead":
                    report.failed = f"service {service} stopped (container {view.name}, exit code {view.exit_code})"
                    return report
                report.waiting.append(f"{service}: {view.state}, restarting")
            elif view.state != "running":
                report.waiting.append(f"{service}: {view.state}")
            elif view.health not in (None, "healthy"):
                report.waiting.append(f"{service}: health {view.health}")
    report.ready = not report.waiting
    return report


class HealthGate:
    """Polls a project until every service is up and healthy, or fails it at the first sure sign or the timeout."""

    def __init__(self, run_blocking: Callable[..., Any], *, interval: float = 0.2) -> None:
        """Bind an executor runner."""
        self._run_blocking = run_blocking
        self.interval = interval

    async def async_wait(self, client: Any, project: str, services: list[str],
                         timeout: float,  # noqa: ASYNC109 - health_timeout
                         log: Callable[[str], None]) -> str | None:
        """None when healthy in time; otherwise why not, in words."""
        deadline = time.monotonic() + timeout
        last: list[str] = []
        while True:
            views = await self._run_blocking(list_project, client, project)
            report = judge(views, services)
            if report.ready:
                return None
            if report.failed:
                return report.failed
            if report.waiting != last:
                log("waiting: " + "; ".join(report.waiting))
                last = report.waiting
            if time.monotonic() >= deadline:
                return f"not healthy within {timeout:g}s: " + "; ".join(report.waiting)
            await asyncio.sleep(self.interval)


def drift_of(views: list[ContainerView], recorded: dict[str, str]) -> list[str]:
    """Differences between what runs and the last deploy: stopped or missing containers, changed config."""
    problems = []
    by_service: dict[str, list[ContainerView]] = {}
    for view in views:
        by_service.setdefault(view.service, []).append(view)
    for service, config_hash in sorted(recorded.items()):
        containers = by_service.get(service, [])
        if not containers:
            problems.append(f"container of service {service} is missing")
            continue
        for view in containers:
            if view.state in ("exited", "dead") and view.exit_code == 0 and view.restart_policy == "no":
                continue
            if view.state != "running":
                problems.append(f"container {view.name} {view.state if view.state != 'exited' else 'stopped'}")
            elif view.config_hash and config_hash and view.config_hash != config_hash:
                problems.append(f"container {view.name} runs a config that differs from the last deploy")
    return problems
