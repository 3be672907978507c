"""Secrets out of the log: a handler filter that runs every record through the live redactors."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

# Each Appliance registers its redactor; a weak set so a stopped appliance (tests, one-shot CLI) drops out.
_REDACTORS: weakref.WeakSet[Callable[[str], str]] = weakref.WeakSet()


def register(redactor: Callable[[str], str]) -> None:
    """Redact every record that reaches an installed handler with `redactor`."""
    _REDACTORS.add(redactor)


class RedactingFilter(logging.Filter):
    """Replaces known secrets in a record's message and traceback before the handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        redactors = list(_REDACTORS)
        if not redactors:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is left for logging to report
            return True
        if record.exc_info and not record.exc_text:
            # The formatter reuses exc_text, so the traceback (which quotes exception messages) is redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for redactor in redactors:
            text = redactor(text)
            if record.exc_text:
                record.exc_text = redactor(record.exc_text)
        record.msg, record.args = text, None
        return True


FILTER = RedactingFilter("dockmaster-redaction")


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if FILTER not in handler.filters:
            handler.addFilter(FILTER)
