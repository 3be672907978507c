"""`!secret` values rendered into a stack's templates stay out of the dry-run diff and every run answer."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer

from .conftest import GitRemote, httpd_compose, wait_idle

pytestmark = pytest.mark.docker


async def test_secret_value_rendered_by_a_template_is_redacted_in_the_dry_run_diff(
    make_client: Any, remote: GitRemote, cleanup_projects: list[str], busybox_image: str, suffix: str,
) -> None:
    name = f"red-{suffix}"
    cleanup_projects.extend([f"dm-{name}", name])
    marker = f"dm-marker-{secrets.token_hex(12)}"
    env_block = "    environment:\n      TOKEN: \"{{ token }}\"\n"
    remote.commit({"stacks/red/compose.yaml.j2": httpd_compose(busybox_image, "red-v1", extra_env=env_block)},
                  "Stack with a templated secret")
    base = {"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}]}
    stack = {"name": name, "repo": "infra", "path": "stacks/red", "auto_deploy": False}
    text = yaml.safe_dump(base) + "stacks:\n  - " + yaml.safe_dump(stack).replace("\n", "\n    ").rstrip() + (
        "\n    values:\n      token: !secret stack_token\n")
    client = await make_client(text, secrets={"stack_token": marker})
    app = client.server.app[APPLIANCE_KEY]
    assert "stacks" in app.loaded_addons, app.addon_errors
    await wait_idle(app)

    resp = await client.post(f"/api/v1/stacks/{name}/deploy", json={"dry_run": True}, headers=bearer("deploy"))
    assert resp.status == 202
    run_id = (await resp.json())["run_id"]
    await wait_idle(app)
    run = await (await client.get(f"/api/v1/runs/{run_id}", headers=bearer("read"))).json()
    assert run["status"] == "succeeded", run
    assert "TOKEN: \"***\"" in run["details"]["diff"], run["details"]["diff"]
    seen = [await (await client.get(path, headers=bearer("read"))).text()
            for path in (f"/api/v1/runs/{run_id}", f"/api/v1/stacks/{name}", "/api/v1/runs")]
    assert all(marker not in page for page in seen)
    await app.store.flush()
    db = Path(app.data_dir) / "dockmaster.db"
    assert marker.encode() not in db.read_bytes()
