"""Authentication: argon2id passwords, hashed API tokens, sessions with CSRF, login throttling."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .const import SCOPE_RANK, SCOPES

_LOGGER = logging.getLogger(__name__)

TOKEN_PREFIX = "dm_"  # noqa: S105 - a marker that makes leaked tokens easy to scan for, not a secret
_HASHER = PasswordHasher(type=Type.ID)
# Verifying against this when the user is unknown keeps both answers equally slow.
# Made on first use, not at import: one argon2id hash touches 64 MiB, which `dockmaster run`
# should not pay (as peak memory) before anyone tries to sign in.
_DUMMY_HASH: str | None = None
# Failure counters are kept per account name, including unknown names; past this many, stale ones go.
_MAX_TRACKED_ACCOUNTS = 10_000


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def hash_password(password: str) -> str:
    """Return an argon2id hash for `dockmaster hash-password`."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Check a password against an argon2id hash (constant time inside argon2)."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_token() -> str:
    """A new random API token (shown once)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who is calling: a logged-in user, an API token, or the one-time bootstrap login."""

    kind: str
    name: str
    scopes: tuple[str, ...]
    session_id: str | None = None
    csrf: str | None = None

    @property
    def actor(self) -> str:
        """How this identity is written in runs and the audit: `user:admin`, `token:ha`."""
        return f"{self.kind}:{self.name}"

    def allows(self, scope: str) -> bool:
        """True when one of the identity's scopes covers `scope` (admin > deploy > read)."""
        needed = SCOPE_RANK[scope]
        return any(SCOPE_RANK.get(s, -1) >= needed for s in self.scopes)


@dataclass
class Session:
    """A browser session; the id is rotated at login and never reused."""

    id: str
    username: str
    kind: str
    csrf: str
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)


@dataclass
class _Attempts:
    failures: list[float] = field(default_factory=list)


class LoginThrottled(Exception):
    """Too many failed logins for an account."""

    def __init__(self, retry_after: float) -> None:
        """Remember when the caller may try again."""
        super().__init__("too many failed logins; try again later")
        self.retry_after = retry_after


class AuthManager:
    """Checks credentials and keeps sessions in memory (a restart logs everyone out)."""

    def __init__(self, conf: dict[str, Any], *, idle_timeout: float, max_age: float) -> None:
        """Index users and token hashes from the `auth:` block."""
        self.users: dict[str, str] = {u["username"]: str(u["password_hash"]) for u in conf.get("users", [])}
        self.tokens: list[tuple[str, str, tuple[str, ...]]] = [
            (t["name"], str(t["token_hash"]), tuple(t.get("scopes", ["read"]))) for t in conf.get("tokens", [])
        ]
        self.max_attempts: int = conf.get("login_attempts", 5)
        lockout = conf.get("lockout")
        self.lockout: float = lockout.total_seconds() if lockout else 300.0
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.sessions: dict[str, Session] = {}
        self._attempts: dict[str, _Attempts] = {}
        self.bootstrap_token: str | None = None
        if not self.users:
            self.bootstrap_token = secrets.token_urlsafe(24)

    @property
    def needs_setup(self) -> bool:
        """True when no user is configured."""
        return not self.users

    # --- passwords and throttling --------------------------------------------------------

    def _check_throttle(self, username: str) -> None:
        attempts = self._attempts.get(username.lower())
        if attempts is None:
            return
        now = time.time()
        attempts.failures = [t for t in attempts.failures if now - t < self.lockout]
        if len(attempts.failures) >= self.max_attempts:
            raise LoginThrottled(self.lockout - (now - attempts.failures[0]))

    def login(self, username: str, password: str) -> Session | None:
        """Verify a username and password; None for a wrong password or an unknown user alike."""
        self._check_throttle(username)
        stored = self.users.get(username)
        ok = verify_password(stored or _dummy_hash(), password) and stored is not None
        if not ok:
            if len(self._attempts) > _MAX_TRACKED_ACCOUNTS:
                self._prune()
            self._attempts.setdefault(username.lower(), _Attempts()).failures.append(time.time())
            return None
        self._attempts.pop(username.lower(), None)
        return self._new_session(username, "user")

    def login_bootstrap(self, token: str) -> Session | None:
        """Accept the one-time bootstrap token (only while no user is configured)."""
        self._check_throttle("__bootstrap__")
        expected = self.bootstrap_token
        if expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
            self._attempts.setdefault("__bootstrap__", _Attempts()).failures.append(time.time())
            return None
        self.bootstrap_token = None  # one time only
        return self._new_session("bootstrap", "bootstrap")

    # --- sessions ------------------------------------------------------------------------

    def _new_session(self, username: str, kind: str) -> Session:
        self._prune()
        session = Session(secrets.token_urlsafe(32), username, kind, secrets.token_urlsafe(32))
        self.sessions[session.id] = session
        return session

    def _prune(self) -> None:
        """Forget expired sessions and stale failure counters so memory stays bounded."""
        now = time.time()
        for sid, session in list(self.sessions.items()):
            if now - session.last_seen > self.idle_timeout or now - session.created > self.max_age:
                del self.sessions[sid]
        if len(self._attempts) > _MAX_TRACKED_ACCOUNTS:
            for name, attempts in list(self._attempts.items()):
                if not attempts.failures or now - attempts.failures[-1] >= self.lockout:
                    del self._attempts[name]

    def session(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, expiring idle and over-age sessions."""
        if not session_id:
            return None
        session = self.sessions.get(session_id)
        if session is None:
            return None
        now = time.time()
        if now - session.last_seen > self.idle_timeout or now - session.created > self.max_age:
            self.sessions.pop(session_id, None)
            return None
        session.last_seen = now
        return session

    def logout(self, session_id: str | None) -> None:
        """Forget a session."""
        if session_id:
            self.sessions.pop(session_id, None)

    # --- identities ----------------------------------------------------------------------

    def identity_for_session(self, session: Session) -> Identity:
        """Users and the bootstrap login have every scope."""
        return Identity(session.kind, session.username, SCOPES, session.id, session.csrf)

    def identity_for_token(self, token: str) -> Identity | None:
        """Find a configured token by its hash, comparing every entry in constant time."""
        digest = hash_token(token)
        found: Identity | None = None
        for name, token_hash, scopes in self.tokens:
            if hmac.compare_digest(digest.encode(), token_hash.encode()):
                found = Identity("token", name, scopes)
        return found
