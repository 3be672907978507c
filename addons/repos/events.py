"""Events of the repos addon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.events import Event


@dataclass(kw_only=True)
class RepoSynced(Event):
    """A repo was fetched."""

    type: ClassVar[str] = "repo_synced"
    key_field: ClassVar[str | None] = "repo"
    repo: str
    revision: str
    previous: str | None = None
    changed: bool = False
    # What started the sync and who asked (carried into the deploys it causes).
    trigger: str = "poll"
    actor: str | None = None
