"""Network probes from config: DNS resolution, TCP connect and HTTP GET, each with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import voluptuous as vol

from appliance import cv


def _tcp_target(value: Any) -> str:
    text = cv.string(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise vol.Invalid(f"tcp target must be host:port, got '{text}'")
    cv.host(host.strip("[]"))
    cv.port(port)
    return text


def validate_probe(probe: dict[str, Any]) -> dict[str, Any]:
    """Check a probe's target against its type (dns: a host, tcp: host:port, http: a URL)."""
    kind, target = probe["type"], probe["target"]
    try:
        if kind == "dns":
            cv.host(target)
        elif kind == "tcp":
            _tcp_target(target)
        else:
            cv.url(target)
    except vol.Invalid as err:
        raise vol.Invalid(err.msg, path=["target"]) from None
    return probe


PROBE_SCHEMA = vol.All(
    vol.Schema({
        vol.Required("name"): cv.slug,
        vol.Required("type"): cv.one_of("dns", "tcp", "http"),
        vol.Required("target"): cv.string,
        vol.Optional("timeout", default=5.0): vol.All(cv.positive_duration, lambda d: d.total_seconds()),
    }),
    validate_probe,
)


async def _dns(target: str) -> str:
    infos = await asyncio.get_running_loop().getaddrinfo(target, None, type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    return ", ".join(addresses)


async def _tcp(target: str) -> str:
    host, _, port = target.rpartition(":")
    _reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return "connected"


async def _http(target: str, session: aiohttp.ClientSession) -> tuple[str, bool]:
    # No redirects: a probe reports what the target answers, it does not wander elsewhere.
    async with session.get(target, allow_redirects=False) as resp:
        return f"HTTP {resp.status}", resp.status < 400


async def async_run_probe(probe: dict[str, Any], session: aiohttp.ClientSession) -> dict[str, Any]:
    """Run one probe within its timeout; the result says ok, how long and what was seen."""
    started = time.monotonic()
    ok, detail = False, ""
    try:
        async with asyncio.timeout(probe["timeout"]):
            if probe["type"] == "dns":
                detail = await _dns(probe["target"])
                ok = bool(detail)
            elif probe["type"] == "tcp":
                detail, ok = await _tcp(probe["target"]), True
            else:
                detail, ok = await _http(probe["target"], session)
    except TimeoutError:
        detail = f"timed out after {probe['timeout']:g}s"
    except (OSError, aiohttp.ClientError) as err:
        detail = str(err) or type(err).__name__
    target = probe["target"]
    if probe["type"] == "http":
        shown = public_url(target)
        # Client errors quote the URL they failed on: never with its credentials or query.
        detail = detail.replace(target, shown)
        parts = urlsplit(target)
        if parts.password:
            detail = detail.replace(parts.password, "***")
        target = shown
    return {
        "name": probe["name"], "type": probe["type"], "target": target,
        "ok": ok, "detail": detail[:500], "ms": round((time.monotonic() - started) * 1000, 1),
    }


def public_url(url: str) -> str:
    """A probe URL as results show it: no `user:pass@`, no query string, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


async def async_run_probes(probes: list[dict[str, Any]], name: str | None = None) -> list[dict[str, Any]]:
    """Run the configured probes (or the one named) concurrently."""
    chosen = [p for p in probes if name is None or p["name"] == name]
    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(async_run_probe(p, session) for p in chosen)))
