"""What the API, UI and one-shot CLI call: summaries of stacks and the deploy/rollback services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from addons.repos.contract import REPOS
from appliance.engines import LOCAL
from appliance.errors import Conflict, NotFound

from .contract import PENDING_LIMIT, StackOverview
from .guard import stack_policy
from .health import list_project
from .lifecycle import ACTIONS

if TYPE_CHECKING:
    from .drift import DriftWatcher
    from .engine import StackEngine


class StackService:
    """Wraps the engine for callers: `stacks.deploy`, `stacks.rollback` and read models."""

    def __init__(self, engine: StackEngine, drift: DriftWatcher) -> None:
        """Bind the engine and the drift watcher."""
        self.engine = engine
        self.drift = drift
        self.app = engine.app

    async def async_deploy(self, *, name: str, dry_run: bool = False, revision: str | None = None,
                           actor: str | None = None, wait: bool = False, trigger: str = "manual") -> int:
        """Queue a deploy (or dry-run) of one stack; returns its run id (after it finished when `wait`)."""
        who = actor or trigger
        rev = f" of {revision[:12]}" if revision else ""
        if dry_run:
            reason = f"dry-run{rev} by {who}"
        else:
            manual = trigger in ("manual", "api")
            reason = f"manual deploy{rev} by {who}" if manual else f"deploy{rev} requested by {who}"
        run = await self.engine.async_request("dry_run" if dry_run else "deploy", name, revision=revision,
                                              trigger=trigger, reason=reason, actor=actor, force=True)
        if wait:
            await self.async_wait(name, run.id)
        return run.id

    async def async_rollback(self, *, name: str, revision: str | None = None, actor: str | None = None,
                             wait: bool = False, trigger: str = "manual") -> int:
        """Queue a rollback to the last good (or the given) revision; returns its run id."""
        target = revision[:12] if revision else "the previous good revision"
        run = await self.engine.async_request("rollback", name, revision=revision, trigger=trigger,
                                              reason=f"rollback to {target} by {actor or trigger}", actor=actor,
                                              force=True)
        if wait:
            await self.async_wait(name, run.id)
        return run.id

    def names(self) -> list[str]:
        """Every configured stack."""
        return list(self.engine.specs())

    def window_of(self, name: str) -> str | None:
        """The stack's own maintenance window (its `window:`), or None."""
        spec = self.engine.specs().get(name)
        return spec.window if spec else None

    def health_of(self, name: str) -> str:
        """The stack's health as last seen."""
        return self.engine.states.get(name).health

    def engine_of(self, name: str) -> str:
        """The engine the stack runs on (`local` for a name Dockmaster does not know)."""
        known = name in self.engine.specs() or name in self.engine.states.states
        return self.engine.running_engine(name) if known else LOCAL

    async def async_lifecycle(self, action: str, *, name: str, actor: str | None = None, source: str | None = None,
                              wait: bool = False, trigger: str = "manual") -> int:
        """Queue stop, start, restart or down of a stack (an orphaned one too), audited; returns its run id."""
        if action not in ACTIONS:
            raise NotFound(f"no stack action named '{action}'")
        who = actor or trigger
        run = await self.engine.async_request(action, name, revision=None, trigger=trigger,
                                              reason=f"{action} by {who}", actor=actor, force=True)
        self.app.store.audit(who, f"stack.{action}", name, source=source, details={"run_id": run.id})
        if wait:
            await self.async_wait(name, run.id)
        return run.id

    async def async_move(self, *, name: str, actor: str | None = None, source: str | None = None,
                         wait: bool = False, trigger: str = "manual") -> int:
        """Queue moving a stack to the engine its config names (deploy there, then down where it ran), audited."""
        spec = self.engine.spec(name)
        state = self.engine.states.get(name)
        current = self.engine.running_engine(name)
        if not state.deployed_revision or state.desired == "down":
            raise Conflict(f"{name} is not running anywhere: deploy it, and it goes to engine {spec.engine}")
        if current == spec.engine:
            raise Conflict(f"{name} already runs on engine {current}: set its `engine:` in the config to the engine "
                           "it should move to, reload, then move it")
        who = actor or trigger
        run = await self.engine.async_request("move", name, revision=state.deployed_revision, trigger=trigger,
                                              reason=f"move from engine {current} to {spec.engine} by {who}",
                                              actor=actor, force=True)
        self.app.store.audit(who, "stack.move", name, source=source,
                             details={"run_id": run.id, "from": current, "to": spec.engine})
        if wait:
            await self.async_wait(name, run.id)
        return run.id

    async def async_wait(self, name: str, run_id: int) -> None:
        """Wait until a run and any rollback it caused are finished."""
        while run_id in self.app.runs.active:
            await self.app.runs.wait_log(run_id, 1.0)
        while True:
            rollback = next((r for r in self.app.runs.active.values() if r.target == name and r.kind == "rollback"),
                            None)
            if rollback is None:
                return
            await self.app.runs.wait_log(rollback.id, 1.0)

    async def async_set_auto_deploy(self, name: str, value: bool, *, actor: str, source: str | None) -> None:
        """Switch a stack's auto_deploy (persisted) and audit who did it."""
        await self.engine.async_set_auto_deploy(name, value)
        self.app.store.audit(actor, "stack.auto_deploy", name, source=source, details={"auto_deploy": value})

    # --- read models --------------------------------------------------------------------

    async def async_summary(self, name: str) -> dict[str, Any]:
        """One stack as the list shows it (an orphaned stack too: it still runs, without a folder or entry)."""
        spec = self.engine.specs().get(name)
        orphaned = self.engine.orphans.all().get(name)
        if spec is None and orphaned is None:
            raise NotFound(f"no stack named '{name}'")
        state = self.engine.states.get(name)
        runs = await self.app.runs.list(target=name, limit=5)
        last = next((r for r in runs if not r["details"].get("dry_run")), None)
        message = await self._message(name, state.deployed_revision)
        return {
            "name": name, "repo": spec.repo if spec else None, "path": spec.path if spec else None,
            "discovered": spec.discovered if spec else False,
            "auto_deploy": self.engine.auto_deploy(name) if spec else False, "project": state.project or f"dm-{name}",
            "desired": state.desired, "orphaned": orphaned is not None, "orphan_reason": orphaned,
            "working_folder": str(self.engine.deployer.folder(name).root) if self.engine.deployer else None,
            "deployed_revision": state.deployed_revision, "good_revision": state.good_revision,
            "bad_revisions": sorted(state.bad), "commit_message": message, "health": state.health,
            "drift": state.drift, "busy": self.app.scheduler.busy(f"stack:{name}"),
            "engine": self.engine.running_engine(name),
            "moving_to": spec.engine if spec and spec.engine != self.engine.running_engine(name) else None,
            "window": spec.window if spec else None, "last_run": _run_brief(last),
            "policy": stack_policy(self.engine.settings, spec).describe() if spec else None,
            # Shown until a later run of the stack: what its policy refused, each with how to allow it.
            "policy_violations": (last or {}).get("details", {}).get("policy_violations", []),
        }

    async def async_overview(self, name: str) -> StackOverview:
        """Deployed and newest revision (the newest commit that changes the stack's folder), health, last run."""
        summary = await self.async_summary(name)
        spec = self.engine.specs().get(name)
        deployed = summary["deployed_revision"]
        latest, subject, total = deployed, "", 0
        pending: tuple[str, ...] = ()
        if spec is not None:
            try:
                repo = self.app.data[REPOS].get(spec.repo)
                if repo.head and repo.head != deployed and (
                        not deployed or any(spec.owns(p) for p in await repo.async_changed_paths(deployed, repo.head))):
                    latest, subject = repo.head, (await repo.async_commit(repo.head)).subject
                    found = await repo.async_commits_between(deployed, repo.head, path=spec.path, limit=PENDING_LIMIT)
                    pending, total = tuple(c.subject for c in found.commits), found.total
            except Exception:  # an unreadable clone: show what runs
                latest, subject, pending, total = deployed, "", (), 0
        last = summary["last_run"] or {}
        return StackOverview(
            name=name, health=summary["health"], auto_deploy=summary["auto_deploy"], deployed_revision=deployed,
            latest_revision=latest, latest_subject=subject, last_run_kind=last.get("kind"),
            last_run_status=last.get("status"), last_run_time=last.get("finished") or last.get("started"),
            last_run_error=last.get("error"), pending_subjects=pending, pending_total=total)

    async def async_list(self) -> list[dict[str, Any]]:
        """Every stack's summary, orphaned ones included."""
        names = sorted({*self.engine.specs(), *self.engine.orphans.all()})
        return [await self.async_summary(name) for name in names]

    async def async_detail(self, name: str) -> dict[str, Any]:
        """One stack with revision history, bad revisions, containers and the last dry-run."""
        summary = await self.async_summary(name)
        state = self.engine.states.get(name)
        spec = self.engine.specs().get(name)
        history = await self.engine.states.async_history(name)
        containers = []
        containers_error = None
        if state.project:
            try:
                client = await self.app.engines.async_docker(self.engine.running_engine(name))
                views = await self.app.async_run_blocking(list_project, client, state.project)
            except Exception as err:  # an unreachable engine: the page still shows what Dockmaster knows
                containers_error = str(err)
                views = []
            containers = [{"name": v.name, "service": v.service, "state": v.state, "health": v.health}
                          for v in views]
        dry = await self.app.runs.get(state.last_dry_run_id) if state.last_dry_run_id else None
        return {
            **summary,
            "health_timeout": spec.health_timeout if spec else None, "rollback": spec.rollback if spec else False,
            "pull": spec.pull if spec else None, "sops": spec.sops if spec else [],
            "value_names": sorted(spec.values) if spec else [], "on_remove": spec.on_remove if spec else None,
            "host_paths": await self._host_paths(name),
            "bad": [{"revision": rev, **info} for rev, info in sorted(state.bad.items(),
                                                                      key=lambda kv: -kv[1]["time"])],
            "revisions": [{k: row[k] for k in ("id", "revision", "run_id", "kind", "outcome", "reason", "message",
                                               "time")} for row in history],
            "containers": containers, "containers_error": containers_error,
            "configured_engine": spec.engine if spec else None,
            "mode": state.mode or (spec.mode if spec else "compose"),
            "last_dry_run": None if dry is None else {
                "id": dry["id"], "status": dry["status"], "revision": dry["details"].get("revision"),
                "changed_files": dry["details"].get("changed_files", []), "diff": dry["details"].get("diff", ""),
                "compose_config": dry["details"].get("compose_config", ""), "error": dry["error"],
                "policy_violations": dry["details"].get("policy_violations", []),
            },
        }

    async def _host_paths(self, name: str) -> dict[str, Any] | None:
        """Whether bind sources in working folders exist on the Docker host, in words."""
        if self.engine.deployer is None:
            return None
        try:
            paths = await self.engine.deployer.placement.async_host_paths(self.engine.running_engine(name))
        except Exception as err:  # the engine is unreachable: the page still shows
            return {"ok": False, "how": f"cannot tell: {err}"}
        return {"ok": paths.ok, "how": paths.how}

    async def _message(self, name: str, revision: str | None) -> str:
        if not revision:
            return ""
        row = await self.app.store.fetchone(
            "SELECT message FROM stack_history WHERE stack = ? AND revision = ? AND message != '' "
            "ORDER BY id DESC LIMIT 1", (name, revision))
        return row["message"] if row else ""


def _run_brief(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {key: run[key] for key in ("id", "kind", "status", "reason", "trigger", "actor", "started", "finished",
                                      "error")}
