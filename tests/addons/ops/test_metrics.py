"""Per-stack metrics on a real deploy: health, last deploy time (kept across a restart), durations, updates."""

from __future__ import annotations

import re
from typing import Any

import pytest

from appliance.keys import APPLIANCE_KEY
from tests.addons.stacks.conftest import (  # noqa: F401 - fixtures
    GitRemote,
    StackApp,
    cleanup_projects,
    httpd_compose,
    make_client,
    remote,
    stacks_app,
    suffix,
    sync,
)
from tests.conftest import bearer

from .conftest import build_image, push_image

pytestmark = pytest.mark.docker


async def _metrics(client: Any) -> str:
    resp = await client.get("/metrics", headers=bearer("read"))
    assert resp.status == 200
    return str(await resp.text())


def _sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # the exposition sorts labels
    match = re.search(rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


async def test_stack_metrics_follow_deploys_and_image_checks(
    image_ref: str, remote: GitRemote, stacks_app: StackApp, make_client: Any,  # noqa: F811
    docker_client: Any, busybox_image: str, suffix: str,  # noqa: F811
) -> None:
    # image_ref comes first: its images are removed only after the stack's containers are gone.
    name = f"met-{suffix}"
    build_image(docker_client, busybox_image, image_ref, "v1")
    push_image(docker_client, image_ref)
    remote.commit({"stacks/met/compose.yaml": httpd_compose(image_ref, "m-v1")}, "v1")
    ops = {"image_check": "0 0 1 1 *", "disk_check": "0 0 1 1 *"}
    stack = {"name": name, "repo": "infra", "path": "stacks/met", "health_timeout": "20s"}
    client, app = await stacks_app([stack], ops=ops)

    text = await _metrics(client)
    assert _sample(text, "dockmaster_stack_healthy", stack=name) == 1.0
    assert _sample(text, "dockmaster_stack_update_available", stack=name) == 0.0
    deployed_at = _sample(text, "dockmaster_stack_last_deploy_timestamp_seconds", stack=name)
    assert deployed_at is not None and deployed_at > 1.7e9
    labels = {"stack": name, "outcome": "succeeded"}
    assert _sample(text, "dockmaster_stack_deploy_duration_seconds_count", **labels) == 1.0
    assert (_sample(text, "dockmaster_stack_deploy_duration_seconds_sum", **labels) or 0.0) > 0.0

    # A commit that never gets healthy: counted as failed; the rollback leaves the stack healthy.
    remote.commit({"stacks/met/compose.yaml": httpd_compose(image_ref, "m-bad", healthy=False)}, "bad")
    await sync(app)
    text = await _metrics(client)
    assert _sample(text, "dockmaster_stack_deploy_duration_seconds_count", stack=name, outcome="failed") == 1.0
    assert _sample(text, "dockmaster_stack_last_deploy_timestamp_seconds", stack=name) == deployed_at

    # A newer image pushed under the same tag: the next image check sets update_available.
    build_image(docker_client, busybox_image, image_ref, "v2")
    push_image(docker_client, image_ref)
    resp = await client.post("/api/v1/ops/images_check", json={"args": {"stack": name}}, headers=bearer("read"))
    assert resp.status == 200, await resp.text()
    assert _sample(await _metrics(client), "dockmaster_stack_update_available", stack=name) == 1.0

    # The last deploy time survives a restart of Dockmaster.
    await client.close()
    config = {"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}], "stacks": [stack], "ops": ops}
    client2 = await make_client(config)
    assert "ops" in client2.app[APPLIANCE_KEY].loaded_addons
    text = await _metrics(client2)
    assert _sample(text, "dockmaster_stack_last_deploy_timestamp_seconds", stack=name) == deployed_at
    assert _sample(text, "dockmaster_stack_update_available", stack=name) == 1.0
