"""Self-update awareness: whether the registry holds a newer image than the one Dockmaster's own container runs.

The image update check of the stacks, applied to the container Dockmaster runs in (found through the
socket as `appliance.hostpaths` finds it). It only reports, on the dashboard and in
`/api/v1/ops/updates`; Dockmaster never replaces its own container.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import docker

from appliance import hostpaths

if TYPE_CHECKING:
    from appliance.core import Appliance

    from .updates import UpdateChecker

_LOGGER = logging.getLogger(__name__)
KV_NAMESPACE = "ops.self_image"
KV_KEY = "status"

# Given the engine, the inspect record of the container Dockmaster runs in, or None outside one; blocks.
Locate = Callable[[docker.DockerClient], "dict[str, Any] | None"]


def running_image(client: docker.DockerClient, attrs: dict[str, Any]) -> dict[str, Any]:
    """The reference a container was created from and the repo digests of the image it runs; blocks."""
    image_id = attrs.get("Image", "")
    try:
        digests = client.images.get(image_id).attrs.get("RepoDigests") or []
    except docker.errors.ImageNotFound:
        digests = []
    return {"image": attrs.get("Config", {}).get("Image", ""), "repo_digests": digests,
            "container": str(attrs.get("Name", "")).lstrip("/"), "image_id": image_id}


class SelfImage:
    """The image check of Dockmaster's own container; `status` is None when it runs in none."""

    def __init__(self, app: Appliance, checker: UpdateChecker, release_notes: str | None,
                 locate: Locate = hostpaths.own_container) -> None:
        """Use the stacks' checker (same registry client, logins and statuses) and link `release_notes`."""
        self.app = app
        self.checker = checker
        self.release_notes = release_notes
        self.locate = locate
        self.status: dict[str, Any] | None = None

    async def async_load(self) -> None:
        """Read the status the last check kept (shown until the next check at start replaces it)."""
        self.status = await self.app.store.kv_get(KV_NAMESPACE, KV_KEY)

    def _find(self, client: docker.DockerClient) -> dict[str, Any] | None:
        attrs = self.locate(client)
        return None if attrs is None else running_image(client, attrs)

    async def async_check(self) -> dict[str, Any] | None:
        """Compare the running image's digest with the registry's; None (nothing to show) outside a container."""
        try:
            found = await self.app.async_run_blocking(self._find, self.app.docker())
        except docker.errors.DockerException as err:  # the engine is away: keep what was known
            _LOGGER.info("Own image not checked: the Docker engine is not reachable: %s", err)
            return self.status
        if found is None or not found["image"]:
            status = None
        else:
            async with self.checker.registry_client() as client:
                item = await self.checker.async_check_image(client, found)
            status = {**item, "container": found["container"], "checked": time.time(),
                      "update_available": item["status"] == "update_available"}
            if status["update_available"]:
                _LOGGER.info("A newer Dockmaster image is in the registry: %s (%s)", item["image"],
                             item["remote_digest"])
        self.status = status
        await self.app.store.kv_set(KV_NAMESPACE, KV_KEY, status)
        return status

    async def async_card(self) -> dict[str, Any] | None:
        """What the dashboard card shows (None outside a container: no card)."""
        if self.status is None:
            return None
        return {**self.status, "release_notes": self.release_notes}
