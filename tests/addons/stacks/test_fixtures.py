"""The stacks test fixtures themselves: apps stop before their compose projects are removed."""

from __future__ import annotations

from typing import Any

import pytest


def test_apps_stop_before_projects_are_removed(request: pytest.FixtureRequest, make_client: Any) -> None:
    order = request.fixturenames
    # Teardown runs in reverse: the app's client (aiohttp_client) must close before cleanup_projects runs.
    assert order.index("cleanup_projects") < order.index("aiohttp_client"), order
