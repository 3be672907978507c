"""Caps on open WebSockets: per identity, overall, and per named group (such as one container's log)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import TooManyRequests

# Clients send nothing larger than a close frame or a ping: anything bigger ends the socket (1009).
WS_MAX_MSG_SIZE = 4096


@dataclass
class SocketLease:
    """One admitted socket; `release()` (or leaving the `with` block) gives its slot back."""

    limits: SocketLimits
    who: str
    group: str | None
    released: bool = False

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if not self.released:
            self.released = True
            self.limits._release(self)

    def __enter__(self) -> SocketLease:
        """Hold the slot for the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the slot however the block ends."""
        self.release()


@dataclass
class SocketLimits:
    """Counts open sockets and refuses one past a cap with 429 before the handshake."""

    total: int
    per_identity: int
    caps: dict[str, int] = field(default_factory=dict)
    open: int = 0
    refused: int = 0
    _by_identity: Counter[str] = field(default_factory=Counter)
    _by_group: Counter[str] = field(default_factory=Counter)

    def acquire(self, who: str, *, group: str | None = None, cap: str | None = None) -> SocketLease:
        """Admit one socket for `who`; `group`/`cap` add a limit shared by every socket of that group."""
        group_max = self.caps.get(cap) if cap else None
        if self.open >= self.total:
            self._refuse(f"too many open live connections (the limit is {self.total})")
        if self._by_identity[who] >= self.per_identity:
            self._refuse(f"too many open live connections for {who} (the limit is {self.per_identity})")
        if group is not None and group_max is not None and self._by_group[group] >= group_max:
            self._refuse(f"too many viewers of {group} (the limit is {group_max})")
        self.open += 1
        self._by_identity[who] += 1
        if group is not None:
            self._by_group[group] += 1
        return SocketLease(self, who, group)

    def _refuse(self, message: str) -> None:
        self.refused += 1
        raise TooManyRequests(message, details={"retry_after": 5})

    def _release(self, lease: SocketLease) -> None:
        self.open -= 1
        self._by_identity[lease.who] -= 1
        if self._by_identity[lease.who] <= 0:
            del self._by_identity[lease.who]
        if lease.group is not None:
            self._by_group[lease.group] -= 1
            if self._by_group[lease.group] <= 0:
                del self._by_group[lease.group]

    @property
    def tracked(self) -> int:
        """How many identities and groups hold a count (zero when every socket is closed)."""
        return len(self._by_identity) + len(self._by_group)

    def status(self) -> dict[str, Any]:
        """The caps and current use, for /api/v1/status."""
        caps = {f"max_{name}": value for name, value in self.caps.items()}
        return {"open": self.open, "max": self.total, "max_per_identity": self.per_identity,
                "max_message_bytes": WS_MAX_MSG_SIZE, "refused": self.refused, **caps}
