"""Every addon's manifest.json is valid, names its own folder, and points at a documentation file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.loader import validate_manifest

ROOT = Path(__file__).resolve().parents[1]
ADDON_DIRS = sorted(p for p in (ROOT / "addons").iterdir() if (p / "__init__.py").exists())


def test_there_are_addons() -> None:
    assert "windows" in [p.name for p in ADDON_DIRS]


@pytest.mark.parametrize("folder", ADDON_DIRS, ids=[p.name for p in ADDON_DIRS])
def test_manifest(folder: Path) -> None:
    path = folder / "manifest.json"
    assert path.is_file(), f"{folder.name} has no manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    manifest = validate_manifest(path, folder.name)
    assert manifest["domain"] == folder.name == data["domain"]
    assert manifest["name"].strip()
    doc = manifest["documentation"]
    doc_file, _, anchor = doc.partition("#")
    assert doc_file.startswith("docs/") and (ROOT / doc_file).is_file(), f"{folder.name}: {doc} does not exist"
    if anchor:
        text = (ROOT / doc_file).read_text(encoding="utf-8").lower()
        assert f"# {anchor}" in text or f"## {anchor}" in text or f'id="{anchor}"' in text, \
            f"{folder.name}: {doc} has no section '{anchor}'"
    known = {p.name for p in ADDON_DIRS}
    for dep in manifest["dependencies"] + manifest["after_dependencies"]:
        assert dep in known, f"{folder.name} depends on unknown addon {dep}"
        assert dep != folder.name
