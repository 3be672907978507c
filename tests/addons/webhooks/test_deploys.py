"""Webhooks through repos to stacks on the real Docker engine: replays and bursts bound the deploys."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE
from appliance.keys import APPLIANCE_KEY
from tests.addons.stacks.conftest import httpd_compose, served, wait_idle

from .conftest import SECRET, Remote, delivery, push_body

pytestmark = pytest.mark.docker


@pytest.fixture
def stack_names(docker_client: Any) -> Iterator[dict[str, str]]:
    """Two uniquely named stacks; their compose projects are removed afterwards."""
    suffix = secrets.token_hex(3)
    names = {"alpha": f"wh-alpha-{suffix}", "beta": f"wh-beta-{suffix}"}
    yield names
    for name in names.values():
        label = f"com.docker.compose.project=dm-{name}"
        for item in [*docker_client.containers.list(all=True, filters={"label": label}),
                     *docker_client.networks.list(filters={"label": label})]:
            with contextlib.suppress(docker.errors.NotFound):  # already gone (compose removed it meanwhile)
                item.remove(**({"force": True} if hasattr(item, "image") else {}))


async def _deploys(app: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in reversed(await app.runs.list(target=name, limit=200)) if r["kind"] == "deploy"]


async def test_replays_and_bursts_bound_the_deploys(
    stack_names: dict[str, str], make_client: Any, remote: Remote, busybox_image: str, docker_client: Any
) -> None:
    # stack_names comes first: its cleanup then runs after the app (and any deploy in flight) stopped.
    for folder in stack_names:
        remote.commit(f"stacks/{folder}/compose.yaml", httpd_compose(busybox_image, f"{folder}-v0"))
    config = {
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}],
        "stacks": [{"name": name, "repo": "infra", "path": f"stacks/{folder}", "health_timeout": "20s"}
                   for folder, name in stack_names.items()],
        "webhooks": [{"repo": "infra", "provider": "github", "secret": SECRET, "debounce": "1s"}],
    }
    client = await make_client(config)
    app = client.server.app[APPLIANCE_KEY]
    assert {"repos", "stacks", "webhooks"} <= set(app.loaded_addons), app.addon_errors
    await wait_idle(app)
    alpha, beta = stack_names["alpha"], stack_names["beta"]
    first = {name: len(await _deploys(app, name)) for name in (alpha, beta)}
    assert first == {alpha: 1, beta: 1}

    # 100 replays of one valid delivery: one sync, one deploy of the stack the commit changed, none of the other.
    sha = remote.commit("stacks/alpha/compose.yaml", httpd_compose(busybox_image, "alpha-v1"))
    raw, headers = delivery("github", push_body("github", "main", sha), delivery_id="one-delivery")
    responses = await asyncio.gather(*(client.post("/hooks/infra", data=raw, headers=headers) for _ in range(100)))
    assert sorted(r.status for r in responses) == [200] * 99 + [202]
    await wait_idle(app)
    assert len(await _deploys(app, alpha)) == first[alpha] + 1
    assert len(await _deploys(app, beta)) == first[beta]
    assert served(docker_client, f"dm-{alpha}") == "alpha-v1"

    # 50 valid pushes within 2 s, each changing both stacks: at most two deploys each, at the newest revision.
    before = {name: len(await _deploys(app, name)) for name in (alpha, beta)}
    shas = remote.stage(lambda i: {f"stacks/{f}/compose.yaml": httpd_compose(busybox_image, f"{f}-b{i}")
                                   for f in stack_names}, 50)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, sha in enumerate(shas):
        await remote.async_advance(sha)
        raw, headers = delivery("github", push_body("github", "main", sha))
        resp = await client.post("/hooks/infra", data=raw, headers=headers)
        assert resp.status == 202, await resp.text()
        await asyncio.sleep(max(0.0, started + 0.035 * (index + 1) - loop.time()))
    assert loop.time() - started < 2.0
    await wait_idle(app, timeout=120)
    engine = app.data[STACKS_SERVICE].engine
    for folder, name in stack_names.items():
        new = (await _deploys(app, name))[before[name]:]
        assert 1 <= len(new) <= 2, new
        assert all(r["status"] == "succeeded" for r in new), new
        assert new[-1]["details"]["revision"] == shas[-1]
        assert engine.states.get(name).deployed_revision == shas[-1]
        assert served(docker_client, f"dm-{name}") == f"{folder}-b49"
