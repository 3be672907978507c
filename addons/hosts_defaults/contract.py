"""What the hosts addon uses of `hosts_defaults`: its schema (the built-in defaults) and how a host inherits them."""

from __future__ import annotations

from . import CONFIG_SCHEMA, DOMAIN, INHERITED, with_defaults

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "INHERITED", "with_defaults"]
