"""The setup, test and CI scripts: README's commands, clear refusals, pytest's exit codes passed on."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _as_unprivileged(argv: list[str]) -> list[str]:
    """Run argv as nobody when the tests run as root (the scripts behave differently for root)."""
    if os.getuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return argv


def test_readme_first_screen_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:25])
    block = re.search(r"```sh\n(.*?)```", first_screen, re.S)
    assert block, "no command block on the README's first screen"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./scripts/run", "./scripts/test"]
    text = (REPO / ".ci" / "run").read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    ci = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "set -euo pipefail" in ci
    assert ci[-1] == "./scripts/test"


def test_scripts_are_executable_bash_without_syntax_errors() -> None:
    for name in ("scripts/setup", "scripts/test", "scripts/run", ".ci/run"):
        path = REPO / name
        assert os.access(path, os.X_OK), name
        assert path.read_text().startswith("#!/usr/bin/env bash\n"), name
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_setup_without_root_prints_the_install_line_and_fails() -> None:
    env = {**os.environ, "DOCKMASTER_EXTRA_PACKAGES": "dockmaster-no-such-package"}
    result = subprocess.run(_as_unprivileged([str(REPO / "scripts" / "setup")]), capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "missing: dockmaster-no-such-package" in result.stderr
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends dockmaster-no-such-package" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_setup_refuses_unknown_arguments() -> None:
    result = subprocess.run([str(REPO / "scripts" / "setup"), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown argument: --bogus" in result.stderr


def test_test_script_treats_no_collected_tests_as_failure() -> None:
    # Setup is already done (this suite runs under it), so this pass is quick and changes nothing.
    result = subprocess.run(
        [str(REPO / "scripts" / "test"), "tests/scripts/test_scripts.py", "-k", "no_test_has_this_name",
         "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no tests were collected" in result.stderr
