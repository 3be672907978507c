"""Authentication: argon2id passwords checked off the loop, hashed API tokens, sessions, throttling."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .const import SCOPE_RANK, SCOPES
from .sessions import Session, SessionStore, credential_mark
from .throttle import LoginThrottle, LoginThrottled, SignInBusy, VerifyGate

if TYPE_CHECKING:
    from .store import Store

__all__ = ["AuthManager", "Identity", "LoginThrottled", "Session", "SignInBusy"]

_LOGGER = logging.getLogger(__name__)

TOKEN_PREFIX = "dm_"  # noqa: S105 - a marker that makes leaked tokens easy to scan for, not a secret
_HASHER = PasswordHasher(type=Type.ID)
# Verifying against this when the user is unknown keeps both answers equally slow.
# Made on first use, not at import: one argon2id hash touches 64 MiB, which `dockmaster run`
# should not pay (as peak memory) before anyone tries to sign in.
_DUMMY_HASH: str | None = None
BOOTSTRAP_ACCOUNT = "__bootstrap__"


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


class AuthManager:
    """Checks credentials off the event loop, throttles guessers and keeps sessions (see sessions.py)."""

    def __init__(self, conf: dict[str, Any], *, idle_timeout: float, max_age: float,
                 gate: VerifyGate | None = None) -> None:
        """Index users and token hashes from the `auth:` block."""
        self.users: dict[str, str] = {u["username"]: str(u["password_hash"]) for u in conf.get("users", [])}
        self.tokens: list[tuple[str, str, tuple[str, ...]]] = [
            (t["name"], str(t["token_hash"]), tuple(t.get("scopes", ["read"]))) for t in conf.get("tokens", [])
        ]
        lockout = conf.get("lockout")
        self.lockout: float = lockout.total_seconds() if lockout else 300.0
        self.throttle = LoginThrottle(
            attempts=conf.get("login_attempts", 5), address_attempts=conf.get("address_attempts", 20),
            global_attempts=conf.get("global_attempts", 200), window=self.lockout, remember_good=max_age,
        )
        self.gate = gate or VerifyGate()
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.sessions = SessionStore(idle_timeout=idle_timeout, max_age=max_age)
        # Only the hash is kept: the token itself is shown once on the console and nowhere else.
        self._bootstrap_hash: str | None = None

    def apply_conf(self, conf: dict[str, Any]) -> None:
        """Take the users and tokens of a reloaded `auth:` block; sessions of removed or changed users end."""
        users = {u["username"]: str(u["password_hash"]) for u in conf.get("users", [])}
        for name, old_hash in self.users.items():
            if users.get(name) != old_hash:
                self.sessions.end_user(name)
        self.users = users
        self.tokens = [(t["name"], str(t["token_hash"]), tuple(t.get("scopes", ["read"])))
                       for t in conf.get("tokens", [])]
        if self.users or self.tokens:
            self._bootstrap_hash = None
            self.sessions.end_kind("bootstrap")

    @property
    def needs_setup(self) -> bool:
        """True when no user is configured."""
        return not self.users

    @property
    def bootstrap_open(self) -> bool:
        """True while the one-time bootstrap sign-in is possible (no user, no token, not yet used)."""
        return self._bootstrap_hash is not None

    def issue_bootstrap_token(self) -> str | None:
        """Make the one-time bootstrap token when neither users nor tokens are configured; shown once."""
        if self.users or self.tokens:
            return None
        token = secrets.token_urlsafe(24)
        self._bootstrap_hash = hash_token(token)
        return token

    async def async_load(self, store: Store) -> None:
        """Load saved sessions, ending those of removed users and changed passwords."""
        valid = {name: credential_mark(password_hash) for name, password_hash in self.users.items()}
        await self.sessions.async_load(store, valid, bootstrap=not self.users and not self.tokens)

    def close(self) -> None:
        """Stop the password-check threads."""
        self.gate.close()

    # --- sign-in --------------------------------------------------------------------------

    async def async_login(self, username: str, password: str, address: str | None) -> Session | None:
        """Verify a username and password; None for a wrong password or an unknown user alike.

        Raises LoginThrottled when a failure budget is spent and SignInBusy when too many checks
        are already running; both are answered with 429 before any hashing.
        """
        self.throttle.check(username, address)
        stored = self.users.get(username)
        ok = await self.gate.async_run(_verify, stored, password)
        if not ok:
            self.throttle.failed(username, address)
            return None
        self.throttle.succeeded(username, address)
        return self.sessions.create(username, "user", credential_mark(self.users[username]))

    def login_bootstrap(self, token: str, address: str | None) -> Session | None:
        """Accept the one-time bootstrap token (only while neither users nor tokens are configured)."""
        self.throttle.check(BOOTSTRAP_ACCOUNT, address)
        expected = self._bootstrap_hash
        if expected is None or not hmac.compare_digest(expected.encode(), hash_token(token).encode()):
            self.throttle.failed(BOOTSTRAP_ACCOUNT, address)
            return None
        self._bootstrap_hash = None  # one time only
        self.throttle.succeeded(BOOTSTRAP_ACCOUNT, address)
        return self.sessions.create("bootstrap", "bootstrap")

    # --- sessions ------------------------------------------------------------------------

    def session(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, expiring idle and over-age sessions."""
        return self.sessions.get(session_id)

    def logout(self, session_id: str | None) -> None:
        """End a session."""
        self.sessions.end(session_id)

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


def _verify(stored: str | None, password: str) -> bool:
    """Blocking (argon2id): check a password, against a dummy hash for an unknown user."""
    ok = verify_password(stored or _dummy_hash(), password)
    return ok and stored is not None
