"""Stack specs built from config (explicit or discovered) and the deploy requests queued for them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from appliance.runs import Run

from .render import inputs_hash

AUTO_TRIGGERS = frozenset({"poll", "webhook", "schedule", "startup"})


@dataclass
class StackSpec:
    """One stack as configured: where its folder lives and how it is deployed."""

    name: str
    repo: str
    path: str
    auto_deploy: bool = True
    values: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    sops: list[str] = field(default_factory=list)
    health_timeout: float = 120.0
    rollback: bool = True
    window: str | None = None
    pull: str = "missing"
    on_remove: str = "keep"
    adopt: bool = False
    discovered: bool = False
    policy: str | dict[str, Any] | None = None  # the stack's own `policy:` (the addon's settings give the rest)
    engine: str = "local"  # the Docker engine it deploys to (a name from engines:)
    mode: str = "compose"  # compose | swarm

    @classmethod
    def from_conf(cls, conf: dict[str, Any], *, name: str | None = None, path: str | None = None,
                  discovered: bool = False) -> StackSpec:
        """Build a spec from a validated stack (or discover) block."""
        return cls(
            name=name or conf["name"], repo=conf["repo"], path=path or conf["path"],
            auto_deploy=conf["auto_deploy"], values=dict(conf["values"]), env=dict(conf["env"]),
            sops=list(conf["sops"]), health_timeout=conf["health_timeout"].total_seconds(),
            rollback=conf["rollback"], window=conf.get("window"), pull=conf["pull"], on_remove=conf["on_remove"],
            adopt=conf["adopt"], discovered=discovered, policy=conf.get("policy"),
            engine=conf.get("engine", "local"), mode=conf.get("mode", "compose"),
        )

    @property
    def inputs_hash(self) -> str:
        """A hash of the config inputs that shape the rendered output (and its own policy, when it has one).

        A revision refused by the policy is held back until these inputs change: a stack given
        `policy: privileged` or an `allow:` list is tried again automatically.
        """
        base = inputs_hash(self.values, self.env, self.pull, self.sops)
        if self.policy is None:
            return base
        return hashlib.sha256(f"{base}\0{json.dumps(self.policy, sort_keys=True, default=list)}".encode()).hexdigest()

    def owns(self, relpath: str) -> bool:
        """True when a repo-relative path lies inside this stack's folder."""
        if self.path == ".":
            return True
        return relpath == self.path or relpath.startswith(self.path + "/")


def slug_from_folder(folder: str) -> str | None:
    """A stack name from a folder name (lowercased; other characters become `-`), or None if empty."""
    text = re.sub(r"[^a-z0-9_-]+", "-", folder.rsplit("/", 1)[-1].lower()).strip("-_")[:63]
    return text or None


@dataclass
class DeployRequest:
    """A queued or running piece of work for one stack: deploy, rollback or dry-run."""

    kind: str  # deploy | rollback | dry_run | move | stop | start | restart | down
    stack: str
    run: Run
    trigger: str
    actor: str | None
    revision: str | None = None
    force: bool = False
    mark_bad: str | None = None  # rollback: the revision rolled back from
    auto: bool = False  # queued by the change-scope check after a sync, whatever started that sync

    @property
    def automatic(self) -> bool:
        """True for work no person asked for (these respect bad marks and skip identical output)."""
        return (self.auto or self.trigger in AUTO_TRIGGERS) and not self.force
