"""Fixtures for core tests: third-party addons written into `<config dir>/custom_addons/`."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import addons


@pytest.fixture
def custom_addon(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Write `custom_addons/<domain>/` beside the config; forget the imported modules afterwards."""
    before_path = list(addons.__path__)
    written: list[str] = []

    def _write(domain: str, source: str, *, manifest: dict | None = None) -> Path:
        folder = tmp_path / "custom_addons" / domain
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text(textwrap.dedent(source))
        data = {"domain": domain, "name": domain.title(), "documentation": "docs/configuration.md",
                "dependencies": []}
        if manifest is not None:
            data = manifest
        (folder / "manifest.json").write_text(json.dumps(data))
        written.append(domain)
        return folder

    yield _write
    addons.__path__[:] = before_path
    for domain in written:
        sys.modules.pop(f"addons.{domain}", None)
