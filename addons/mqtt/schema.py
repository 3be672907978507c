"""The `mqtt:` config schema: the broker, its credentials and TLS, topics and what MQTT may command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from appliance import cv

COMMAND_SCOPES = ("read", "deploy", "admin")
_TOPIC_RE = r"^[^#+\s]+(/[^#+\s]+)*$"
TOPIC = vol.All(cv.string, vol.Match(_TOPIC_RE, msg="a topic without wildcards, spaces or a trailing '/'"))


def broker_url(value: Any) -> str:
    """`mqtt://host[:port]` or `mqtts://host[:port]` (TLS), without credentials (use `username`/`password`)."""
    text = cv.string(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise vol.Invalid(f"invalid broker '{text}' (expected mqtt://host:port or mqtts://host:port)")
    if parts.username or parts.password:
        raise vol.Invalid("put the broker's credentials in username and password (with !secret), not in the URL")
    try:
        _ = parts.port
    except ValueError:
        raise vol.Invalid(f"invalid port in broker '{parts.scheme}://{parts.hostname}:…'") from None
    return text


TLS_SCHEMA = vol.Schema({
    vol.Optional("ca"): cv.path,
    vol.Optional("cert"): cv.path,
    vol.Optional("key"): cv.path,
    vol.Optional("verify", default=True): cv.boolean,
})

CONFIG_SCHEMA = vol.Schema({
    vol.Required("broker"): broker_url,
    vol.Optional("username"): cv.string,
    vol.Optional("password"): cv.string,
    vol.Optional("client_id"): vol.All(cv.string, vol.Length(min=1, max=64)),
    vol.Optional("tls", default={}): TLS_SCHEMA,
    vol.Optional("discovery_prefix", default="homeassistant"): TOPIC,
    vol.Optional("base_topic", default="dockmaster"): TOPIC,
    vol.Optional("command_scope", default="deploy"): cv.one_of(*COMMAND_SCOPES),
    vol.Optional("keepalive", default="30s"): cv.positive_duration,
})


@dataclass(frozen=True)
class Broker:
    """Where and how to connect, from a validated `mqtt:` block."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    client_id: str
    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool
    keepalive: int

    @classmethod
    def from_conf(cls, conf: dict[str, Any], default_client_id: str) -> Broker:
        """Split the broker URL and gather the connection options."""
        parts = urlsplit(conf["broker"])
        tls = parts.scheme == "mqtts"
        tls_conf = conf.get("tls", {})
        return cls(host=parts.hostname or "", port=parts.port or (8883 if tls else 1883), tls=tls,
                   username=conf.get("username"), password=conf.get("password"),
                   client_id=conf.get("client_id") or default_client_id, ca=tls_conf.get("ca"),
                   cert=tls_conf.get("cert"), key=tls_conf.get("key"), verify=tls_conf.get("verify", True),
                   keepalive=max(5, int(conf["keepalive"].total_seconds())))
