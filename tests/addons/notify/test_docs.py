"""docs/notifications.md covers every key, group, message and route, and its example URLs are real."""

from __future__ import annotations

import re
from pathlib import Path

import apprise
import voluptuous as vol
import yaml

from addons.notify import api, views
from addons.notify.schema import EVENT_GROUPS, TARGET_SCHEMA
from appliance.http.routes import RouteTable
from appliance.messages import catalogue

DOC = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"


def _schema_keys() -> list[str]:
    schema = next(v for v in TARGET_SCHEMA.validators if isinstance(v, vol.Schema))
    return [str(getattr(key, "schema", key)) for key in schema.schema]


def test_every_key_group_event_and_route_is_documented() -> None:
    text = DOC.read_text()
    missing = [f"`{key}`" for key in _schema_keys() if f"`{key}`" not in text]
    missing += [f"`{name}`" for name in [*EVENT_GROUPS, *catalogue()] if f"`{name}`" not in text]
    routes = RouteTable()
    api.register(routes)
    views.register(routes)
    missing += [spec.path for spec in routes.routes if spec.path not in text]
    assert missing == []


def test_example_urls_are_accepted_by_apprise() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    secrets = [yaml.safe_load(block) for block in blocks if block.startswith("# secrets.yaml")]
    urls = [url for block in secrets for url in block.values()]
    assert len(urls) >= 10
    refused = [url.split("://")[0] for url in urls if apprise.Apprise.instantiate(url) is None]
    assert refused == []
