"""The layers hold: the core imports no addon, addons meet only through contracts of declared dependencies."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False,
                          env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(cwd)})


def test_import_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("appliance/core.py", "import addons.stacks.engine", "The core never imports an addon"),
    ("addons/ops/console.py", "from addons.stacks.engine import StackEngine", "Addons meet only through"),
    ("addons/webhooks/receiver.py", "import addons.repos.manager", "Addons meet only through"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    for part in ("appliance", "addons"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout


def _addon_imports(folder: Path) -> set[str]:
    """The other addons a package imports (their top-level names), from its source."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "addons" and len(parts) > 1 and parts[1] != folder.name:
                    found.add(name)
    return found


def test_an_addon_imports_only_contracts_of_its_declared_dependencies() -> None:
    problems = []
    for folder in sorted(p for p in (ROOT / "addons").iterdir() if (p / "manifest.json").is_file()):
        manifest = json.loads((folder / "manifest.json").read_text())
        declared = {*manifest.get("dependencies", []), *manifest.get("after_dependencies", [])}
        for name in sorted(_addon_imports(folder)):
            other = name.split(".")[1]
            if not name.endswith(".contract") and not name.startswith(f"addons.{other}.contract"):
                problems.append(f"{folder.name} imports {name}, not {other}'s contract")
            elif other not in declared:
                problems.append(f"{folder.name} imports {name} but does not declare {other} in its manifest")
    assert problems == []
