"""Image update checks: the digest a stack's containers run against the registry's, per stack."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import docker

from . import credentials
from .containers import MANAGED_LABEL, PROJECT_LABEL, STACK_LABEL
from .engines import async_client, async_reachable_clients
from .events import ImageUpdateAvailable
from .registry_client import ImageRef, RegistryClient, RegistryError, parse_ref

if TYPE_CHECKING:
    from appliance.core import Appliance

_LOGGER = logging.getLogger(__name__)
KV_NAMESPACE = "ops.image_updates"


def running_images(client: docker.DockerClient, stack: str | None) -> dict[str, list[dict[str, Any]]]:
    """Per stack, each image reference with the repo digests of the image its containers run; blocks."""
    label = f"{STACK_LABEL}={stack}" if stack else f"{MANAGED_LABEL}=true"
    containers = client.containers.list(all=True, filters={"label": [label]})
    if stack and not containers:
        containers = client.containers.list(all=True, filters={"label": [f"{PROJECT_LABEL}=dm-{stack}"]})
    found: dict[str, dict[str, dict[str, Any]]] = {}
    digests_by_id: dict[str, list[str]] = {}
    for container in containers:
        labels = container.attrs.get("Config", {}).get("Labels") or {}
        name = labels.get(STACK_LABEL) or stack
        reference = container.attrs.get("Config", {}).get("Image", "")
        image_id = container.attrs.get("Image", "")
        if not name or not reference:
            continue
        if image_id not in digests_by_id:
            try:
                digests_by_id[image_id] = client.images.get(image_id).attrs.get("RepoDigests") or []
            except docker.errors.ImageNotFound:
                digests_by_id[image_id] = []
        entry = found.setdefault(name, {}).setdefault(reference, {"image": reference, "image_ids": set(),
                                                                   "repo_digests": set()})
        entry["image_ids"].add(image_id)
        entry["repo_digests"].update(digests_by_id[image_id])
    return {
        name: [{**e, "image_ids": sorted(e["image_ids"]), "repo_digests": sorted(e["repo_digests"])}
               for e in refs.values()]
        for name, refs in found.items()
    }


def local_digests(ref: ImageRef, repo_digests: list[str]) -> list[str]:
    """The digests of `repo_digests` (`repo@sha256:...`) that belong to the reference's repository."""
    keys = {ref.repo_key, f"{ref.registry}/{ref.repository}", f"docker.io/{ref.repository}"}
    return [d.split("@", 1)[1] for d in repo_digests if "@" in d and d.split("@", 1)[0] in keys]


class UpdateChecker:
    """Compares running digests with registry digests and keeps the per-stack status."""

    def __init__(self, app: Appliance) -> None:
        """Keep the last status per stack (also persisted in the kv store)."""
        self.app = app
        self.status: dict[str, dict[str, Any]] = {}

    async def async_load(self) -> None:
        """Read the statuses persisted by earlier checks."""
        self.status = await self.app.store.kv_all(KV_NAMESPACE)

    async def async_check(self, stack: str | None = None) -> dict[str, dict[str, Any]]:
        """Check every managed stack (or one); fire `image_update_available` for new updates."""
        if stack is not None:
            stacks = await self.app.async_run_blocking(running_images, await async_client(self.app, stack=stack), stack)
        else:  # every engine that answers: stacks on several engines are checked alike
            stacks = {}
            for _, client in await async_reachable_clients(self.app):
                stacks.update(await self.app.async_run_blocking(running_images, client, None))
        remote: dict[str, tuple[str | None, str | None]] = {}
        results: dict[str, dict[str, Any]] = {}
        async with self.registry_client() as client:
            for name, images in sorted(stacks.items()):
                checked = []
                for image in images:
                    checked.append(await self.async_check_image(client, image, remote))
                results[name] = {
                    "stack": name, "checked": time.time(),
                    "update_available": any(i["status"] == "update_available" for i in checked),
                    "images": checked,
                }
        for name, status in results.items():
            previous = self.status.get(name) or {}
            seen = {i["image"]: i.get("remote_digest") for i in previous.get("images", [])
                    if i["status"] == "update_available"}
            for image in status["images"]:
                if image["status"] == "update_available" and seen.get(image["image"]) != image["remote_digest"]:
                    self.app.bus.async_fire(ImageUpdateAvailable(
                        stack=name, image=image["image"], local_digest=image["local_digest"],
                        remote_digest=image["remote_digest"]))
            self.status[name] = status
            await self.app.store.kv_set(KV_NAMESPACE, name, status)
        return results

    @contextlib.asynccontextmanager
    async def registry_client(self) -> AsyncIterator[RegistryClient]:
        """A registry client with the logins of `<data_dir>/docker/config.json` (read now, as it may change)."""
        async with aiohttp.ClientSession() as session:
            path = credentials.config_path(self.app.data_dir)
            logins = await self.app.async_run_blocking(credentials.read_credentials, path)
            yield RegistryClient(session, credentials=lambda registry: logins.get(credentials.registry_key(registry)))

    async def async_check_image(self, client: RegistryClient, image: dict[str, Any],
                                remote: dict[str, tuple[str | None, str | None]] | None = None) -> dict[str, Any]:
        """Status of one image (`image`: reference, `repo_digests` of what runs); `remote` caches registry answers."""
        remote = {} if remote is None else remote
        reference = image["image"]
        item: dict[str, Any] = {"image": reference, "local_digest": None, "remote_digest": None,
                                "status": "unknown", "error": None}
        ref = parse_ref(reference)
        if ref is None:
            item["status"] = "pinned"
            return item
        mine = local_digests(ref, image["repo_digests"])
        if not mine:
            # Built locally and never pushed or pulled: there is nothing to compare, so nothing is asked.
            item["status"] = "local"
            item["error"] = "no registry digest for the running image (built locally?)"
            return item
        item["local_digest"] = mine[0]
        if reference not in remote:
            try:
                remote[reference] = (await client.async_remote_digest(ref), None)
            except RegistryError as err:
                remote[reference] = (None, str(err))
        digest, error = remote[reference]
        item["remote_digest"], item["error"] = digest, error
        if digest:
            item["status"] = "current" if digest in mine else "update_available"
            if digest in mine:
                item["local_digest"] = digest
        return item

    def stacks_with_updates(self) -> list[str]:
        """Stacks whose last check found an update."""
        return sorted(name for name, s in self.status.items() if s.get("update_available"))
