"""One process owns a data dir: a one-shot CLI verb refuses to run beside the daemon and repairs nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from appliance.keys import APPLIANCE_KEY


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)


async def test_oneshot_verb_refuses_while_the_daemon_runs(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    app = client.server.app[APPLIANCE_KEY]
    assert app.primary
    run = await app.runs.create("sync", "infra", trigger="poll", reason="poll", status="running")

    done = await asyncio.to_thread(_cli, tmp_path / "config.yaml", "deploy", "web")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "a Dockmaster daemon is running on" in done.stderr
    # The daemon's live run was not declared interrupted by the other process.
    row = await app.store.fetchone("SELECT status FROM runs WHERE id = ?", (run.id,))
    assert row is not None and row["status"] == "running"
    await app.runs.finish(run, "succeeded")


async def test_the_data_dir_is_free_again_once_released(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    app = client.server.app[APPLIANCE_KEY]
    app.release_data_dir()  # what async_stop does last
    assert not app.primary

    done = await asyncio.to_thread(_cli, tmp_path / "config.yaml", "deploy", "web")

    # Past the lock: it now fails only because no stacks are configured.
    assert done.returncode == 2 and "stacks.deploy is not available" in done.stderr, done.stderr
