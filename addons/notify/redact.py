"""Keep notification URLs and their tokens out of pages, API answers and logs."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote, urlsplit

_NETLOC_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::(?P<port>\d{1,5}))?$")
_DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_SECRET_QUERY_RE = re.compile(r"token|key|pass|secret|user|auth|to$|from$", re.IGNORECASE)
# Third-party loggers that may print a notification URL or its path (Apprise itself, and the HTTP
# client under it at debug level).
LOGGERS = ("apprise", "urllib3.connectionpool")
# Short pieces would blank out ordinary words everywhere the redactor runs.
_MIN_PIECE = 6
# A path segment made of lower-case words (`dockmaster`, `alerts-topic`) is a name, not a credential:
# hiding it would blank that word in every log line. Tokens carry digits, mixed case or symbols.
_PLAIN_WORDS_RE = re.compile(r"^[a-z]+(?:[-_.][a-z]+)*$")
# Segments this long are treated as tokens even when they are all letters (random base32/64 keys).
_TOKEN_LENGTH = 24


def _split_netloc(netloc: str) -> tuple[str, str | None]:
    """Host and port of a netloc without its user info; an unparseable one gives ('', None)."""
    match = _NETLOC_RE.match(netloc.rpartition("@")[2])
    if not match:
        return "", None
    return match.group("host"), match.group("port")


def _is_address(host: str) -> bool:
    """True for a DNS name with a dot, an IP literal or localhost: a place, not a token."""
    if host == "localhost" or _DNS_NAME_RE.match(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_token(piece: str) -> bool:
    """True when a path segment may be a credential: not a plain lower-case word, or very long."""
    return len(piece) >= _TOKEN_LENGTH or not _PLAIN_WORDS_RE.match(piece)


def redact_url(url: str) -> str:
    """Scheme and host only, e.g. `ntfy://ntfy.example/***`; a host that is a token is hidden too."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "***"
    scheme = parts.scheme.lower() or "?"
    host, port = _split_netloc(parts.netloc)
    # Services like Telegram, Pushover or cloud ntfy put the token or topic where a host would be.
    if not host or not _is_address(host):
        return f"{scheme}://***"
    return f"{scheme}://{host}{':' + port if port else ''}/***"


def secret_pieces(url: str) -> list[str]:
    """The parts of a URL that may be secret, for the global redactor (the whole URL comes first)."""
    text = url.strip()
    pieces = [text]
    try:
        parts = urlsplit(text)
    except ValueError:
        return pieces
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        pieces.append(userinfo)
        pieces.extend(unquote(p) for p in userinfo.split(":", 1))
    host, _ = _split_netloc(parts.netloc)
    if host and not _is_address(host):
        pieces.append(host)
    # Telegram-style tokens carry a colon, which leaves the netloc unparseable as host:port.
    if not host and parts.netloc:
        pieces.append(parts.netloc.rpartition("@")[2])
    tokens = [unquote(seg) for seg in parts.path.split("/") if len(seg) >= _MIN_PIECE and is_token(unquote(seg))]
    if tokens:
        # The whole path only when it holds a token: `/dockmaster` alone must not mask that word.
        pieces.append(parts.path)
        pieces.extend(tokens)
    for name, value in parse_qsl(parts.query):
        if _SECRET_QUERY_RE.search(name):
            pieces.append(value)
    return [p for p in pieces if len(p) >= _MIN_PIECE or p == text]


class RedactingFilter(logging.Filter):
    """Runs every record of a logger through the registered redactors before any handler sees it."""

    def __init__(self) -> None:
        """Start with no redactors."""
        super().__init__("dockmaster-notify-redaction")
        self.redactors: list[Callable[[str], str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the message with its redacted text; never drops a record."""
        if not self.redactors:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is left for logging to report
            return True
        for redactor in self.redactors:
            text = redactor(text)
        record.msg, record.args = text, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction(redactor: Callable[[str], str]) -> Callable[[], None]:
    """Redact the third-party loggers that can see notification URLs; returns an uninstall."""
    if not _FILTER.redactors:
        for name in LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
    _FILTER.redactors.append(redactor)

    def _uninstall() -> None:
        if redactor in _FILTER.redactors:
            _FILTER.redactors.remove(redactor)
        if not _FILTER.redactors:
            for name in LOGGERS:
                logging.getLogger(name).removeFilter(_FILTER)

    return _uninstall
