"""Docs are enforced data: every config key, addon, event type and route appears in docs/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from appliance.config import CORE_SCHEMAS
from appliance.events import event_types
from appliance.keys import APPLIANCE_KEY
from appliance.loader import AddonRegistry
from tests.appliance.full_config import builtin_domains, full_config
from tests.conftest import bearer

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))


def schema_keys(schema: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every literal key of a voluptuous schema, walking nested schemas, lists, All and Any."""
    seen = seen if seen is not None else set()
    if id(schema) in seen:
        return
    seen.add(id(schema))
    if isinstance(schema, vol.Schema):
        yield from schema_keys(schema.schema, seen)
    elif isinstance(schema, dict):
        for key, value in schema.items():
            name = getattr(key, "schema", key)
            if isinstance(name, str):
                yield name
            yield from schema_keys(value, seen)
    elif isinstance(schema, list | tuple):
        for item in schema:
            yield from schema_keys(item, seen)
    elif isinstance(schema, vol.All | vol.Any | vol.Union | vol.SomeOf):
        for validator in schema.validators:
            yield from schema_keys(validator, seen)


def _schemas() -> list[tuple[str, Any]]:
    registry = AddonRegistry()
    result: list[tuple[str, Any]] = list(CORE_SCHEMAS.items())
    for domain in builtin_domains():
        addon = registry.get(domain)
        error = addon.error if addon else "not found"
        assert addon is not None and addon.module is not None, f"addon {domain} cannot be imported: {error}"
        result.append((domain, addon.config_schema))
    return result


def _mentioned(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


@pytest.mark.parametrize(("domain", "schema"), _schemas(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_config_key_is_documented(domain: str, schema: Any) -> None:
    text = _docs_text()
    assert _mentioned(text, domain), f"config block '{domain}' is not in docs/"
    missing = sorted({key for key in schema_keys(schema) if not _mentioned(text, key)})
    assert not missing, f"{domain}: keys not documented in docs/: {', '.join(missing)}"


def test_every_addon_is_documented() -> None:
    text = _docs_text()
    configuration = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for domain in builtin_domains():
        assert _mentioned(text, domain)
        assert re.search(rf"^#+ .*`?{domain}`?", configuration, re.M), \
            f"docs/configuration.md has no section for the {domain} addon"


def test_every_event_type_is_documented() -> None:
    # Importing every addon registers the events they define.
    _schemas()
    text = _docs_text()
    missing = sorted(name for name in event_types() if not _mentioned(text, name))
    assert not missing, f"event types not documented in docs/: {', '.join(missing)}"


async def test_every_route_is_documented(make_client) -> None:
    client = await make_client(full_config())
    app = client.app[APPLIANCE_KEY]
    assert not app.addon_errors, {d: e.error for d, e in app.addon_errors.items()}
    text = _docs_text()
    missing = sorted({f"{spec.method} {spec.path}" for spec in app.api.routes
                      if spec.kind != "static" and spec.path not in text})
    assert not missing, "routes not documented in docs/:\n" + "\n".join(missing)


async def test_every_metric_is_documented_and_the_dashboard_uses_real_ones(make_client) -> None:
    client = await make_client(full_config())
    resp = await client.get("/metrics", headers=bearer("read"))
    exposed = set(re.findall(r"^# TYPE (\w+) ", await resp.text(), re.M))
    exposed = {name for name in exposed if not name.endswith("_created")}
    assert {"dockmaster_stack_healthy", "dockmaster_host_state", "dockmaster_stack_deploy_duration_seconds"} <= exposed
    page = (DOCS / "metrics.md").read_text(encoding="utf-8")
    missing = sorted(name for name in exposed if not _mentioned(page, name))
    assert not missing, f"metrics not in docs/metrics.md: {', '.join(missing)}"
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    used = {m for panel in dashboard["panels"] for target in panel["targets"]
            for m in re.findall(r"dockmaster_\w+", target["expr"])}
    unknown = sorted(m for m in used if m not in exposed and re.sub(r"_(bucket|count|sum)$", "", m) not in exposed)
    assert used and not unknown, f"dashboard queries unknown metrics: {unknown}"
