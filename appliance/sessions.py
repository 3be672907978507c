"""Browser sessions kept in SQLite under a hash of their id, so a restart signs nobody out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

_LOGGER = logging.getLogger(__name__)
# last_seen is written back at most this often per session (a request is not a database write).
TOUCH_INTERVAL = 60.0


def session_key(session_id: str) -> str:
    """The stored form of a session id: a database copy cannot be replayed as a cookie."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def csrf_for(session_id: str) -> str:
    """The CSRF token of a session, derived from its id (so it is never stored)."""
    digest = hmac.new(session_id.encode("utf-8"), b"dockmaster-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def credential_mark(password_hash: str) -> str:
    """A short fingerprint of a user's password hash: sessions made under an older password end."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


@dataclass
class Session:
    """A browser session; `id` is the cookie value, known only in the request that presented it."""

    key: str
    username: str
    kind: str
    cred: str = ""
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    id: str = ""
    saved_seen: float = 0.0

    @property
    def csrf(self) -> str:
        """The session's CSRF token (empty for a session loaded without its id)."""
        return csrf_for(self.id) if self.id else ""


class SessionStore:
    """Sessions in memory for lookups, written through to the `sessions` table."""

    def __init__(self, *, idle_timeout: float, max_age: float) -> None:
        """Expire sessions idle for `idle_timeout` or older than `max_age` seconds."""
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.by_key: dict[str, Session] = {}
        self._store: Store | None = None

    async def async_load(self, store: Store, valid: dict[str, str], *, bootstrap: bool) -> None:
        """Load saved sessions; drop expired ones and those of removed users or changed passwords.

        `valid` maps each configured user to the credential mark of its current password hash;
        bootstrap sessions survive only while the appliance is still waiting for its first user.
        """
        self._store = store
        now = time.time()
        dropped: list[str] = []
        for row in await store.fetchall("SELECT * FROM sessions"):
            session = Session(row["key"], row["username"], row["kind"], row["cred"], row["created"],
                              row["last_seen"], saved_seen=row["last_seen"])
            if session.kind == "user":
                current = valid.get(session.username)
                keep = current is not None and hmac.compare_digest(current, session.cred)
            else:
                keep = bootstrap
            if keep and not self._expired(session, now):
                self.by_key[session.key] = session
            else:
                dropped.append(session.key)
        if dropped:
            store.enqueue_many("DELETE FROM sessions WHERE key = ?", [(key,) for key in dropped])
            _LOGGER.info("Ended %d saved session(s): expired, user removed or password changed", len(dropped))

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_timeout or now - session.created > self.max_age

    def create(self, username: str, kind: str, cred: str = "") -> Session:
        """A new session with a fresh random id."""
        self.prune()
        session_id = secrets.token_urlsafe(32)
        session = Session(session_key(session_id), username, kind, cred, id=session_id)
        session.saved_seen = session.last_seen
        self.by_key[session.key] = session
        if self._store is not None:
            self._store.enqueue(
                "INSERT INTO sessions (key, username, kind, cred, created, last_seen) VALUES (?, ?, ?, ?, ?, ?)",
                (session.key, username, kind, cred, session.created, session.last_seen),
            )
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value; an expired one is ended."""
        if not session_id:
            return None
        key = session_key(session_id)
        session = self.by_key.get(key)
        if session is None:
            return None
        now = time.time()
        if self._expired(session, now):
            self._forget([key])
            return None
        session.last_seen = now
        session.id = session_id
        if self._store is not None and now - session.saved_seen >= TOUCH_INTERVAL:
            session.saved_seen = now
            self._store.enqueue("UPDATE sessions SET last_seen = ? WHERE key = ?", (now, key))
        return session

    def end(self, session_id: str | None) -> None:
        """End one session (sign-out, or the old session at a new sign-in)."""
        if session_id:
            self._forget([session_key(session_id)])

    def end_user(self, username: str) -> int:
        """End every session of a user; returns how many there were."""
        keys = [key for key, s in self.by_key.items() if s.kind == "user" and s.username == username]
        self._forget(keys)
        return len(keys)

    def end_kind(self, kind: str) -> int:
        """End every session of a kind (the bootstrap sessions once the first user exists)."""
        keys = [key for key, s in self.by_key.items() if s.kind == kind]
        self._forget(keys)
        return len(keys)

    def prune(self) -> None:
        """Forget expired sessions so memory and the table stay bounded."""
        now = time.time()
        self._forget([key for key, s in self.by_key.items() if self._expired(s, now)])

    def _forget(self, keys: list[str]) -> None:
        for key in keys:
            self.by_key.pop(key, None)
        if keys and self._store is not None:
            self._store.enqueue_many("DELETE FROM sessions WHERE key = ?", [(key,) for key in keys])
