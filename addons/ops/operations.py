"""The built-in operations: containers, stacks, images, disk, probes and host signals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from appliance import cv

from . import containers, credentials, host, probes, stackops
from .engines import async_client
from .registry import OpContext, Operation, OperationRegistry, Target

if TYPE_CHECKING:
    from .updates import UpdateChecker

_STACK_RE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_LABEL_RE = r"^[A-Za-z0-9_.-]{1,128}(=[A-Za-z0-9_.:/-]{0,256})?$"
CONTAINER = Target(containers.container_name, "a container name or id", lambda t: f"container:{t}",
                   containers.CONTAINER_PATTERN)
CONTAINER_OR_SERVICE = Target(containers.container_or_service,
                              "a container name or id, or <stack>/<service>", containers.lock_key_for)
STACK = Target(cv.slug, "a stack name", lambda t: f"stack:{t}", _STACK_RE)
_STOP_TIMEOUT = vol.All(int, vol.Range(min=0, max=300))


def register_builtin(registry: OperationRegistry, conf: dict[str, Any], checker: UpdateChecker,
                     after_check: Callable[[dict[str, Any]], Awaitable[None]],
                     self_check: Callable[[], Awaitable[dict[str, Any] | None]] | None = None) -> None:
    """Register every built-in operation with its schema, scope, lock policy and timeout."""
    app = registry.app
    managed_only = conf["containers"] == "managed"

    async def containers_list(ctx: OpContext) -> Any:
        client = await async_client(app, stack=ctx.args.get("stack"))
        items = await app.async_run_blocking(
            lambda: containers.list_containers(client, stack=ctx.args.get("stack"), managed_only=managed_only)
        )
        ctx.run.log(f"{len(items)} containers")
        return {"containers": items}

    def container_action(action: str) -> Any:
        async def _handler(ctx: OpContext) -> Any:
            ctx.run.log(f"{action} {ctx.target}")
            client = await async_client(app, target=ctx.target)
            result = await app.async_run_blocking(
                lambda: containers.act(client, ctx.target, action, stop_timeout=ctx.args["timeout"],
                                       managed_only=managed_only, admin=ctx.allows("admin"))
            )
            for item in result:
                ctx.run.log(f"{item['name']}: {item['state']}")
            return {"containers": result}

        return _handler

    async def container_logs(ctx: OpContext) -> Any:
        client = await async_client(app, target=ctx.target)
        lines = await app.async_run_blocking(
            lambda: containers.tail_logs(client, ctx.target, tail=ctx.args["tail"], since=ctx.args.get("since"),
                                         managed_only=managed_only, admin=ctx.allows("admin"))
        )
        # The lines go to the caller only: a container's output is not copied into run history.
        ctx.run.log(f"read {len(lines)} lines")
        return {"lines": lines}

    async def stack_pull(ctx: OpContext) -> Any:
        client = await async_client(app, stack=ctx.target)
        refs = await app.async_run_blocking(stackops.stack_images, client, ctx.target)
        ctx.run.log(f"pulling {', '.join(refs)}")
        logins = await app.async_run_blocking(credentials.read_credentials, credentials.config_path(app.data_dir))
        pulled = await app.async_run_blocking(stackops.pull_images, client, refs, logins)
        for item in pulled:
            ctx.run.log(f"{item['image']}: {item['id'] or 'pinned, left alone'}")
        return {"images": pulled}

    async def stack_recreate(ctx: OpContext) -> Any:
        if ctx.args["pull"]:
            await stack_pull(ctx)
        return await stackops.async_recreate(app, ctx.target, ctx.run, reason=ctx.run.reason)

    async def stack_update(ctx: OpContext) -> Any:
        pulled = await stack_pull(ctx)
        recreated = await stackops.async_recreate(app, ctx.target, ctx.run, reason="image update")
        status = await checker.async_check(ctx.target)
        return {"pulled": pulled["images"], "recreated": recreated, "status": status.get(ctx.target)}

    async def images_prune(ctx: OpContext) -> Any:
        result = await app.async_run_blocking(containers.prune_dangling, app.docker(), ctx.args.get("label"))
        ctx.run.log(f"removed {len(result['deleted'])} images, {result['space_reclaimed']} bytes")
        return result

    async def disk_usage(ctx: OpContext) -> Any:
        return await app.async_run_blocking(host.engine_usage, app)

    async def probes_run(ctx: OpContext) -> Any:
        results = await probes.async_run_probes(conf["probes"], ctx.args.get("name"))
        for item in results:
            ctx.run.log(f"{item['name']}: {'ok' if item['ok'] else 'FAILED'} {item['detail']}")
        registry.last_probes = {"time": datetime.now().timestamp(), "results": results}
        return {"probes": results}

    async def host_reboot_required(ctx: OpContext) -> Any:
        return await app.async_run_blocking(host.reboot_required, Path(conf["reboot_required_file"]))

    async def host_journal(ctx: OpContext) -> Any:
        journal_dir = Path(conf["journal_dir"]) if conf.get("journal_dir") else None
        lines = await host.async_journal(journal_dir, ctx.target, ctx.args["lines"])
        ctx.run.log(f"read {len(lines)} journal lines of {ctx.target}")
        return {"unit": ctx.target, "lines": lines}

    async def images_check(ctx: OpContext) -> Any:
        results = await checker.async_check(ctx.args.get("stack"))
        for name, status in results.items():
            ctx.run.log(f"{name}: {'update available' if status['update_available'] else 'up to date'}")
        own = None
        if self_check is not None and not ctx.args.get("stack"):
            own = await self_check()
            if own is not None:
                ctx.run.log(f"dockmaster ({own['container']}): {own['status'].replace('_', ' ')}")
        # Only the scheduled check may queue auto-updates: a read-scope caller must not cause a
        # recreate by asking whether images are current.
        if ctx.run.trigger == "schedule":
            await after_check(results)
        return {"stacks": results, "dockmaster": own}

    def update_window(ctx: OpContext) -> Any:
        if ctx.args["now"]:
            return None
        return app.window(stackops.stack_window_name(app, ctx.target, conf.get("update_window")))

    units = list(conf["journal_units"])
    probe_names = [p["name"] for p in conf["probes"]]
    stack_arg = vol.All(str, vol.Match(_STACK_RE))
    ops = [
        Operation("containers_list", "Containers with state, health and uptime", containers_list,
                  vol.Schema({vol.Optional("stack"): stack_arg}), scope="read", timeout=30),
        *[
            Operation(f"container_{action}", f"{action.capitalize()} a container or a stack's service",
                      container_action(action),
                      vol.Schema({vol.Optional("timeout", default=10): _STOP_TIMEOUT}),
                      scope="deploy", target=CONTAINER_OR_SERVICE, lock="reject", timeout=330)
            for action in ("restart", "stop", "start")
        ],
        Operation("container_logs", "The last lines of a container's log", container_logs,
                  vol.Schema({vol.Optional("tail", default=200): vol.All(int, vol.Range(min=1, max=10000)),
                              vol.Optional("since"): vol.All(int, vol.Range(min=1, max=90 * 86400))}),
                  scope="read", target=CONTAINER_OR_SERVICE, timeout=30),
        Operation("stack_pull", "Pull the images a stack's containers use", stack_pull, scope="deploy",
                  target=STACK, lock="queue", timeout=1800, background=True),
        Operation("stack_recreate", "Recreate a stack's containers", stack_recreate,
                  vol.Schema({vol.Optional("pull", default=False): bool}), scope="deploy", target=STACK,
                  lock="reject", timeout=1800, background=True),
        Operation("stack_update", "Apply image updates to a stack: pull, then recreate (waits for its window)",
                  stack_update, vol.Schema({vol.Optional("now", default=False): bool}), scope="deploy",
                  target=STACK, lock="queue", timeout=3600, background=True, window=update_window),
        Operation("images_prune", "Remove dangling images", images_prune,
                  vol.Schema({vol.Optional("label"): vol.All(str, vol.Match(_LABEL_RE))}), scope="admin",
                  target=None, timeout=600),
        Operation("disk_usage", "Docker disk usage and free space of the data dir", disk_usage, timeout=60),
        Operation("probes_run", "Run the configured network probes", probes_run,
                  vol.Schema({vol.Optional("name"): vol.In(probe_names)}), timeout=60),
        Operation("host_reboot_required", "Whether the appliance host needs a reboot", host_reboot_required,
                  timeout=10),
        Operation("host_journal", "A slice of an allowlisted unit's journal", host_journal,
                  vol.Schema({vol.Optional("lines", default=100): vol.All(int, vol.Range(min=1, max=2000))}),
                  scope="admin", target=Target(vol.In(units), "an allowlisted unit (ops.journal_units)"),
                  timeout=30),
        Operation("images_check", "Compare running image digests with the registry's", images_check,
                  vol.Schema({vol.Optional("stack"): stack_arg}), scope="read", timeout=300),
    ]
    for op in ops:
        registry.register(op)
