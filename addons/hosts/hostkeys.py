"""Host key decisions for asyncssh: refuse changed keys, record new ones only with accept-new."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncssh


@dataclass
class KeyCheck:
    """What the host key callback saw, so the connect error can say why in plain words."""

    known_hosts: asyncssh.SSHKnownHosts | None
    pattern: str
    accept_new: bool
    problem: str | None = None
    new_key: asyncssh.SSHKey | None = None


class KeyCheckClient(asyncssh.SSHClient):
    """Decides on keys that asyncssh did not find trusted: changed (refuse) or new (maybe record)."""

    def __init__(self, check: KeyCheck) -> None:
        """Keep the shared check record."""
        self._check = check

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Accept a never-seen key only with `accept-new`; a changed key is always refused."""
        check = self._check
        fingerprint = key.get_fingerprint()
        trusted: list[Any] = []
        if check.known_hosts is not None:
            trusted = list(check.known_hosts.match(host, addr, port)[0])
        if trusted:
            check.problem = (
                f"host key for {check.pattern} has CHANGED (now {fingerprint}); it does not match "
                "known_hosts. This may be a re-installed host or an attack: verify it, then remove the "
                "old line from known_hosts"
            )
            return False
        if check.accept_new:
            check.new_key = key
            return True
        check.problem = (
            f"host key for {check.pattern} is unknown ({fingerprint}) and host_key_check is strict: "
            "add it to known_hosts (ssh-keyscan, checked out of band) or set host_key_check: accept-new"
        )
        return False
