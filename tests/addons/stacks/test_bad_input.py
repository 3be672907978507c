"""Bad input fails the run with a clear message and leaves the running stack untouched."""

from __future__ import annotations

from typing import Any

import pytest

from addons.stacks.api import SERVICE_KEY as STACKS_SERVICE

from .conftest import GitRemote, StackApp, container_ids, served, sync

pytestmark = pytest.mark.docker

TEMPLATE = """services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo {{{{ greeting }}}} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1::8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 500ms
      retries: 2
"""


async def test_bad_input_fails_the_run_and_keeps_the_stack_running(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"bad-{suffix}"
    escape = f"esc-{suffix}"
    remote.commit({"stacks/bad/compose.yaml.j2": TEMPLATE.format(image=busybox_image)}, "Templated stack")
    remote.symlink("stacks/esc", "../..", "A stack folder that is a symlink out of the repo")
    _, app = await stacks_app([
        {"name": name, "repo": "infra", "path": "stacks/bad", "values": {"greeting": "hello-v1"},
         "health_timeout": "20s"},
        {"name": escape, "repo": "infra", "path": "stacks/esc"},
    ])
    assert served(docker_client, f"dm-{name}") == "hello-v1"
    esc_run = (await app.runs.list(target=escape, limit=1))[0]
    assert esc_run["status"] == "failed"
    assert "leads outside the repo" in esc_run["error"]
    assert not container_ids(docker_client, f"dm-{escape}")
    running = container_ids(docker_client, f"dm-{name}")

    cases = [
        ({"stacks/bad/compose.yaml.j2": TEMPLATE.format(image=busybox_image).replace("greeting", "colour")},
         "template compose.yaml.j2: value 'colour' is undefined"),
        ({"stacks/bad/compose.yaml.j2": '{% include "../../README.md" %}\n' + TEMPLATE.format(image=busybox_image)},
         "template compose.yaml.j2 reads '../../README.md', which is not a file inside the stack folder"),
        ({"stacks/bad/compose.yaml.j2": TEMPLATE.format(image=busybox_image).replace("services:", "servicez:")},
         "compose config rejected the stack"),
    ]
    for files, message in cases:
        sha = remote.commit(files, f"Break: {message}")
        await sync(app)
        last = (await app.runs.list(target=name, limit=1))[0]
        assert last["status"] == "failed", last
        assert last["details"]["revision"] == sha
        assert message in last["error"], last["error"]
        log = (await app.runs.get(last["id"]) or {})["log"]
        assert "the running stack was not touched" in log
        assert container_ids(docker_client, f"dm-{name}") == running
        assert served(docker_client, f"dm-{name}") == "hello-v1"


async def test_a_revision_that_failed_for_a_missing_value_deploys_once_the_value_is_set(
    remote: GitRemote, stacks_app: StackApp, busybox_image: str, docker_client: Any, suffix: str
) -> None:
    name = f"val-{suffix}"
    sha = remote.commit({"stacks/val/compose.yaml.j2": TEMPLATE.format(image=busybox_image)}, "Templated stack")
    entry = {"name": name, "repo": "infra", "path": "stacks/val", "health_timeout": "20s"}
    client, app = await stacks_app([entry])
    first = (await app.runs.list(target=name, limit=1))[0]
    assert first["status"] == "failed" and "value 'greeting' is undefined" in first["error"]
    await client.close()

    # The user adds the value to config.yaml and restarts: same commit, new inputs, so it is retried.
    _, app = await stacks_app([{**entry, "values": {"greeting": "hello-now"}}])

    last = (await app.runs.list(target=name, limit=1))[0]
    assert (last["status"], last["details"]["revision"], last["trigger"]) == ("succeeded", sha, "startup"), last
    assert served(docker_client, f"dm-{name}") == "hello-now"
    assert sha not in app.data[STACKS_SERVICE].engine.states.get(name).bad
