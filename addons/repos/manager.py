"""RepoManager: sync runs per repo, single-flight with coalescing, persisted status, RepoSynced events."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from appliance.errors import NotFound
from appliance.runs import Run

from .clone import FetchError, FetchOutcome
from .events import RepoSynced
from .repo import Repo, SyncResult, SyncState
from .schema import RepoConfig

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)

KV_NAMESPACE = "repos"


def sync_key(name: str) -> str:
    """The single-flight key shared by polls, webhooks and manual syncs of a repo."""
    return f"repo:{name}"


class RepoManager:
    """Owns every configured repo; stored at `app.data[REPOS]` (see `contract.RepoCatalog`)."""

    def __init__(self, app: Appliance, confs: list[RepoConfig]) -> None:
        """Build a Repo per config entry and register every credential with the redactor."""
        self.app = app
        self.repos: dict[str, Repo] = {}
        for conf in confs:
            repo = Repo(app, conf)
            app.redactor.add(*repo.auth.secrets())
            self.repos[repo.name] = repo
        self._pending: dict[str, Run] = {}
        self._waiters: dict[int, asyncio.Future[SyncResult]] = {}
        self._queueing: dict[str, asyncio.Lock] = {}

    @property
    def names(self) -> list[str]:
        """The configured repo names."""
        return list(self.repos)

    def get(self, name: str) -> Repo:
        """The named repo; raises NotFound."""
        try:
            return self.repos[name]
        except KeyError:
            raise NotFound(f"no repo named '{name}'") from None

    # --- state ------------------------------------------------------------------------------

    async def async_load(self) -> None:
        """Read each repo's last status from the store; a head no longer in the clone is forgotten."""
        stored = await self.app.store.kv_all(KV_NAMESPACE)
        for name, repo in self.repos.items():
            repo.state = SyncState.from_dict(stored.get(name))
            if repo.state.head and not await self.app.async_run_blocking(_has_commit, repo, repo.state.head):
                _LOGGER.warning("Repo %s: stored revision %s is not in the clone; it will be fetched again",
                                name, repo.state.head[:7])
                repo.state.head = None
                repo.state.head_commit = {}

    async def _async_save(self, repo: Repo) -> None:
        await self.app.store.kv_set(KV_NAMESPACE, repo.name, repo.state.as_dict())

    # --- triggers ---------------------------------------------------------------------------

    async def async_request_sync(self, name: str, *, trigger: str, reason: str, actor: str | None = None) -> int:
        """Queue a sync and return at once with the id of the run that will cover this trigger."""
        repo = self.get(name)
        # Creating the run awaits the store: without the lock, concurrent triggers would each queue a
        # run, and all but one would stay queued forever (and their callers would wait forever).
        async with self._queueing.setdefault(name, asyncio.Lock()):
            pending = self._pending.get(name)
            if pending is not None:
                # A queued run has not started fetching yet, so it will see this trigger's commits too.
                pending.log(f"also covers: {reason} ({trigger})")
                return pending.id
            run = await self._async_queue(repo, trigger=trigger, reason=reason, actor=actor)
            self.app.scheduler.submit(sync_key(name), functools.partial(self._async_execute, name),
                                      timeout=self._job_timeout(repo))
        return run.id

    async def async_sync(self, name: str, *, trigger: str, reason: str, actor: str | None = None) -> SyncResult:
        """Like `async_request_sync`, but wait for the sync to finish and return its result."""
        run_id = await self.async_request_sync(name, trigger=trigger, reason=reason, actor=actor)
        return await asyncio.shield(self._waiters[run_id])

    async def _async_queue(self, repo: Repo, *, trigger: str, reason: str, actor: str | None) -> Run:
        run = await self.app.runs.create("sync", repo.name, trigger=trigger, reason=reason, actor=actor,
                                         details={"branch": repo.branch})
        run.secrets.add(*repo.auth.secrets())
        self._pending[repo.name] = run
        self._waiters[run.id] = asyncio.get_running_loop().create_future()
        return run

    async def _async_poll(self, name: str) -> SyncResult | None:
        """The cron job: fold into a queued run when there is one, else sync as a poll."""
        repo = self.repos[name]
        async with self._queueing.setdefault(name, asyncio.Lock()):
            if name not in self._pending:
                await self._async_queue(repo, trigger="poll", reason="poll", actor=None)
        return await self._async_execute(name)

    def _job_timeout(self, repo: Repo) -> float:
        # A safety net only: every git call has its own timeout (the fetch timeout).
        return repo.fetch_timeout * 4 + 60

    def start_polls(self) -> None:
        """Register a cron job per repo with `poll`, sharing the repo's single-flight key."""
        for name, repo in self.repos.items():
            if repo.poll:
                self.app.scheduler.add_cron(
                    f"repo-poll:{name}", repo.poll, functools.partial(self._async_poll, name),
                    jitter=min(30.0, repo.fetch_timeout / 4), timeout=self._job_timeout(repo), key=sync_key(name),
                )

    async def async_startup(self) -> None:
        """Queue one sync per repo in the background; never waits for a fetch."""
        for name in self.repos:
            try:
                await self.async_request_sync(name, trigger="startup", reason="startup")
            except Exception:
                _LOGGER.exception("Repo %s: cannot queue the startup sync", name)

    async def async_stop(self) -> None:
        """Runs still queued at shutdown are cancelled (the running one is cancelled by the scheduler)."""
        for name, run in list(self._pending.items()):
            self._pending.pop(name, None)
            await self.app.runs.finish(run, "cancelled", error="Dockmaster stopped before this sync started")
            waiter = self._waiters.pop(run.id, None)
            if waiter is not None and not waiter.done():
                waiter.cancel()

    # --- the sync ---------------------------------------------------------------------------

    async def _async_execute(self, name: str) -> SyncResult | None:
        """Run the queued sync of `name` (called by the scheduler under the repo's key)."""
        run = self._pending.pop(name, None)
        if run is None:
            return None
        waiter = self._waiters.pop(run.id, None)
        try:
            result = await self._async_run(self.repos[name], run)
        except BaseException as err:
            if waiter is not None and not waiter.done():
                waiter.cancel() if isinstance(err, asyncio.CancelledError) else waiter.set_exception(err)
            raise
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
        return result

    async def _async_run(self, repo: Repo, run: Run) -> SyncResult:
        previous = repo.head
        result = SyncResult(repo.name, run.id, previous, previous, False, None)
        try:
            async with self.app.runs.track("sync", repo.name, trigger=run.trigger, reason=run.reason, run=run):
                run.log(f"fetching branch {repo.branch} of {repo.url}")
                try:
                    outcome: FetchOutcome = await self.app.async_run_blocking(repo.clone.sync, previous)
                except FetchError as err:
                    for line in err.output[-20:]:
                        run.log(f"git: {line}")
                    self.app.runs.update(run, reason=f"{run.reason}: fetch failed")
                    raise
                for note in outcome.notes:
                    run.log(note)
                self._record_success(repo, run, outcome)
                result.revision, result.changed = outcome.revision, outcome.changed
                # Persist and announce before the run is marked done: whoever sees the run finished
                # also sees the new head, and listeners (stacks) hear of it exactly once.
                self._stamp(repo, run)
                await self._async_save(repo)
                self.app.bus.async_fire(RepoSynced(repo=repo.name, revision=outcome.revision,
                                                   previous=previous, changed=outcome.changed,
                                                   trigger=run.trigger, actor=run.actor))
        except FetchError as err:
            result.error = run.error or self.app.redactor(str(err))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            _LOGGER.exception("Repo %s: sync failed unexpectedly", repo.name)
            result.error = run.error or self.app.redactor(str(err) or type(err).__name__)
        if result.error is not None:
            repo.state.last_status, repo.state.last_error = "failed", result.error
            self._stamp(repo, run)
            await self._async_save(repo)
        return result

    @staticmethod
    def _stamp(repo: Repo, run: Run) -> None:
        repo.state.last_sync, repo.state.last_run_id, repo.state.last_trigger = time.time(), run.id, run.trigger

    def _record_success(self, repo: Repo, run: Run, outcome: FetchOutcome) -> None:
        state = repo.state
        newest = outcome.commits[0] if outcome.commits else None
        if newest:
            state.head_commit = {"short": newest["short"], "subject": newest["subject"]}
        state.head, state.branch = outcome.revision, repo.branch
        state.last_status, state.last_error = "succeeded", None
        if outcome.changed:
            state.last_change = time.time()
        words = describe_outcome(run.reason, repo.branch, outcome)
        run.log(words)
        run.log(f"fetched in {outcome.seconds:.2f}s; {outcome.packs} pack(s) in the clone")
        self.app.runs.update(run, reason=words, details={
            "revision": outcome.revision, "previous": outcome.previous, "changed": outcome.changed,
            "new_commits": outcome.new_commits, "rewritten": outcome.rewritten,
            "commits": outcome.commits, "packs": outcome.packs, "fetch_seconds": round(outcome.seconds, 3),
        })

    def status(self) -> list[dict[str, Any]]:
        """Every repo as the API shows it, with whether a sync is running or queued."""
        items = []
        for name, repo in sorted(self.repos.items()):
            item = repo.as_dict()
            item["syncing"] = self.app.scheduler.busy(sync_key(name))
            item["queued_run_id"] = self._pending[name].id if name in self._pending else None
            items.append(item)
        return items


def describe_outcome(reason: str, branch: str, outcome: FetchOutcome) -> str:
    """The run's reason in words: 'poll found 3 new commits: 1a2b3c4 Update traefik'."""
    if not outcome.changed:
        return f"{reason}: no change"
    newest = outcome.commits[0] if outcome.commits else {"short": outcome.revision[:7], "subject": ""}
    head = f"{newest['short']} {newest['subject']}".strip()
    if outcome.previous is None:
        return f"{reason}: cloned {branch} at {head}"
    if outcome.rewritten:
        return f"{reason} found {branch} rewritten (force-push), now at {head}"
    if outcome.new_commits is None:
        return f"{reason} found new commits, now at {head}"
    plural = "s" if outcome.new_commits != 1 else ""
    return f"{reason} found {outcome.new_commits} new commit{plural}: {head}"


def _has_commit(repo: Repo, sha: str) -> bool:
    """True when the clone holds commit `sha`; blocks."""
    import git

    if not (repo.path / ".git").is_dir():
        return False
    with contextlib.suppress(Exception), git.Repo(repo.path) as handle:
        handle.git.cat_file("-e", f"{sha}^{{commit}}")
        return True
    return False
