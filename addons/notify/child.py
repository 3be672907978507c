"""Apprise in a short-lived child process: `python -m addons.notify.child` reads one JSON request on stdin.

The daemon never imports Apprise's ~200 service plugins (about 25 MB that would stay resident), and a
send that overruns its limit is ended by killing this process instead of leaving a thread behind.
Requests: `{"op": "validate", "urls": [...]}` answers one error (or null) per URL;
`{"op": "send", "urls": [...], "title", "body", "type", "timeout", "asset": {...}}` answers one
error (or null) per URL. URLs arrive on stdin only, never in argv or the environment.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_TYPES = ("info", "success", "warning", "failure")


class _Reasons(logging.Handler):
    """Keeps the warnings Apprise logs while sending: they say why a service refused a message."""

    def __init__(self) -> None:
        """Collect from WARNING up."""
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the message text."""
        self.messages.append(record.getMessage())


def _validate(urls: list[str]) -> list[str | None]:
    import apprise

    return [
        None if apprise.Apprise.instantiate(url) is not None
        else f"Apprise cannot read this {url.split('://', 1)[0]}:// URL (check its format and token)"
        for url in urls
    ]


def _send(request: dict[str, Any]) -> list[str | None]:
    import apprise
    from apprise import NotifyFormat

    asset = apprise.AppriseAsset(**request.get("asset", {}))
    timeout = float(request["timeout"])
    notify_type = request["type"] if request["type"] in _TYPES else "info"
    results: list[str | None] = []
    for url in request["urls"]:
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            results.append("Apprise cannot read this URL")
            continue
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, timeout)
        plugin.socket_read_timeout = timeout
        reasons = _Reasons()
        logging.getLogger("apprise").addHandler(reasons)
        started = time.monotonic()
        try:
            ok = plugin.notify(body=request["body"], title=request["title"], notify_type=notify_type,
                               body_format=NotifyFormat.MARKDOWN)
        except Exception as err:  # a plugin bug is this URL's failure, not the batch's
            ok, reasons.messages = False, [f"{type(err).__name__}: {err}"]
        finally:
            logging.getLogger("apprise").removeHandler(reasons)
        if ok:
            results.append(None)
        elif time.monotonic() - started >= 0.9 * timeout:
            results.append(f"no answer within {timeout:g}s")
        else:
            results.append(reasons.messages[-1] if reasons.messages else "the service did not accept the message")
    return results


def main() -> None:
    """Answer one request from stdin on stdout."""
    # Apprise's messages may quote a URL: they are kept for the answer, never written out.
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.setLevel(logging.WARNING)
    apprise_logger.propagate = False
    request = json.load(sys.stdin)
    answer = _validate(request["urls"]) if request["op"] == "validate" else _send(request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
