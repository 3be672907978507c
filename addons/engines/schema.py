"""The `engines:` config block: named Docker engines reached over SSH or TLS (`local` always exists)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from appliance import cv
from appliance.engines import LOCAL

DEFAULT_SOCKET = "/var/run/docker.sock"


def engine_url(value: Any) -> str:
    """`ssh://user@host[:port]` or `tcp://host:port` (TLS); nothing else reaches an engine here."""
    text = cv.string(value)
    parts = urlsplit(text)
    if parts.scheme not in ("ssh", "tcp"):
        raise vol.Invalid(f"engine url must start with ssh:// or tcp://, got '{text}'")
    if not parts.hostname:
        raise vol.Invalid(f"engine url names no host: '{text}'")
    if parts.password:
        raise vol.Invalid("engine url must not hold a password; use ssh_key")
    if parts.path not in ("", "/"):
        raise vol.Invalid(f"engine url must not hold a path: '{text}' (the remote socket is `socket:`)")
    try:
        port = parts.port
    except ValueError:
        raise vol.Invalid(f"engine url has a bad port: '{text}'") from None
    if parts.scheme == "tcp" and port is None:
        raise vol.Invalid(f"a tcp:// engine url needs a port (2376 for TLS): '{text}'")
    return text


def _name(value: Any) -> str:
    name = cv.slug(value)
    if name == LOCAL:
        raise vol.Invalid("'local' is the engine Dockmaster runs beside; it needs no entry")
    return name


def _absolute(value: Any) -> str:
    text = cv.string(value)
    if not text.startswith("/"):
        raise vol.Invalid(f"must be an absolute path on the engine's host, got '{text}'")
    return text.rstrip("/") or "/"


TLS_SCHEMA = vol.Schema({vol.Required("ca"): cv.path, vol.Required("cert"): cv.path, vol.Required("key"): cv.path})

ENGINE_SCHEMA = vol.Schema({
    vol.Required("name"): _name,
    vol.Optional("url"): engine_url,
    vol.Optional("host"): cv.slug,  # a `hosts:` entry: its address, port, user, key and known_hosts
    vol.Optional("ssh_key"): cv.path,
    vol.Optional("known_hosts"): cv.path,
    vol.Optional("socket", default=DEFAULT_SOCKET): _absolute,
    vol.Optional("tls"): TLS_SCHEMA,
    # Where stack working folders live on that engine's host (binds like ./data name folders there).
    vol.Optional("stacks_dir"): _absolute,
    vol.Optional("check_interval", default="30s"): cv.positive_duration,
})


def _check(entry: dict[str, Any]) -> dict[str, Any]:
    url = entry.get("url")
    if url is not None and entry.get("host") is not None:
        raise vol.Invalid("give `url` or `host`, not both", path=["host"])
    if url is None and entry.get("host") is None:
        raise vol.Invalid("an engine needs `url` (ssh:// or tcp://) or `host` (a name from hosts:)")
    if url and url.startswith("tcp://") and "tls" not in entry:
        raise vol.Invalid("a tcp:// engine needs `tls: {ca, cert, key}`: Dockmaster never drives an engine "
                          "over plain TCP", path=["tls"])
    if (url is None or url.startswith("ssh://")) and "tls" in entry:
        raise vol.Invalid("`tls` is for tcp:// engines; an SSH engine is reached through its socket", path=["tls"])
    if url and url.startswith("tcp://") and ("ssh_key" in entry or "known_hosts" in entry):
        raise vol.Invalid("`ssh_key` and `known_hosts` are for ssh:// engines", path=["ssh_key"])
    return entry


CONFIG_SCHEMA = vol.Schema(vol.All(cv.ensure_list, [vol.All(ENGINE_SCHEMA, _check)], cv.unique_names()))
