"""Registry manifest digests over the Docker Registry HTTP API v2, with the anonymous Bearer token flow."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from docker.auth import resolve_repository_name
from docker.utils import parse_repository_tag

from .credentials import Credential

_LOGGER = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
DOCKER_HUB = "registry-1.docker.io"


class RegistryError(Exception):
    """The registry could not be asked (unreachable, refused, or no digest in its answer)."""


@dataclass(frozen=True)
class ImageRef:
    """An image reference split into registry host, repository path and tag."""

    original: str
    registry: str
    repository: str
    tag: str

    @property
    def insecure(self) -> bool:
        """Loopback registries speak plain http, as the engine allows for 127.0.0.0/8."""
        host = self.registry.rsplit(":", 1)[0] if self.registry.count(":") == 1 else self.registry
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            return False

    @property
    def base_url(self) -> str:
        """The registry's API root."""
        return f"{'http' if self.insecure else 'https'}://{self.registry}"

    @property
    def repo_key(self) -> str:
        """How the engine writes this repository in `RepoDigests` (`docker.io/` is left out)."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"


def parse_ref(reference: str) -> ImageRef | None:
    """Split an image reference; None for references pinned by digest (nothing to update)."""
    repo, tag = parse_repository_tag(reference)
    if (tag and tag.startswith("sha256:")) or "@" in reference:
        return None
    registry, name = resolve_repository_name(repo)
    if registry in ("docker.io", "index.docker.io"):
        registry = DOCKER_HUB
        if "/" not in name:
            name = f"library/{name}"
    return ImageRef(reference, registry, name, tag or "latest")


def parse_challenge(header: str) -> dict[str, str] | None:
    """The parameters of a `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = dict(_CHALLENGE_RE.findall(rest))
    return params if params.get("realm") else None


def _host_of(registry: str) -> str:
    """The host part of `host[:port]` (IPv6 in brackets allowed)."""
    if registry.startswith("["):
        return registry[1:registry.index("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def realm_allowed(realm: str, ref: ImageRef) -> bool:
    """Whether a challenge's token realm may be asked: https or the registry's own host, never loopback or link-local.

    The realm comes from the registry's answer, so a hostile registry could otherwise point
    Dockmaster at a service on its own host or at a cloud metadata address.
    """
    parts = urlsplit(realm)
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("http", "https"):
        return False
    if host == _host_of(ref.registry).lower():
        return True  # the registry's own host: the same trust as the manifest request itself
    if parts.scheme != "https":
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_link_local or address.is_unspecified)


class RegistryClient:
    """Asks registries for manifest digests; anonymous tokens are cached per realm and scope."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout: float = 15.0,
                 credentials: Callable[[str], Credential | None] | None = None) -> None:
        """Use `session` for every request; `credentials(registry)` gives a login for private registries."""
        self.session = session
        self.credentials = credentials or (lambda _registry: None)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._tokens: dict[tuple[str, str, str], str] = {}
        # Which token a repository needed last time, so later checks skip the 401 round trip.
        self._repo_token: dict[tuple[str, str], tuple[str, str, str]] = {}

    async def async_remote_digest(self, ref: ImageRef) -> str:
        """The registry's digest for `ref` (`HEAD /v2/<name>/manifests/<tag>`, `Docker-Content-Digest`)."""
        url = f"{ref.base_url}/v2/{ref.repository}/manifests/{ref.tag}"
        headers = {"Accept": MANIFEST_ACCEPT}
        key = self._repo_token.get((ref.registry, ref.repository))
        for attempt in range(2):
            if key and key in self._tokens:
                headers["Authorization"] = f"Bearer {self._tokens[key]}"
            try:
                async with self.session.head(url, headers=headers, timeout=self.timeout,
                                             allow_redirects=False) as resp:
                    if resp.status == 401 and attempt == 0:
                        offered = resp.headers.get("WWW-Authenticate", "")
                        challenge = parse_challenge(offered)
                        login = self.credentials(ref.registry)
                        if challenge is None and login is not None and offered.lower().startswith("basic"):
                            # A registry behind htpasswd takes the login on every request.
                            headers["Authorization"] = login.basic()
                            key = None
                            continue
                        if challenge is None:
                            raise RegistryError(f"{ref.registry} wants credentials (add them with "
                                                "`dockmaster registry login`)")
                        if key:
                            self._tokens.pop(key, None)  # expired: fetch a fresh one
                        key = await self._async_token(challenge, ref)
                        self._repo_token[(ref.registry, ref.repository)] = key
                        continue
                    if resp.status == 401:
                        raise RegistryError(f"{ref.registry} refused the credentials for {ref.repository}")
                    if resp.status == 404:
                        raise RegistryError(f"{ref.repository}:{ref.tag} is not in {ref.registry}")
                    if resp.status != 200:
                        raise RegistryError(f"{ref.registry} answered HTTP {resp.status}")
                    digest = resp.headers.get("Docker-Content-Digest")
                    if not digest:
                        raise RegistryError(f"{ref.registry} sent no Docker-Content-Digest header")
                    return digest
            except (aiohttp.ClientError, TimeoutError) as err:
                raise RegistryError(f"cannot reach {ref.registry}: {err or type(err).__name__}") from None
        raise RegistryError(f"{ref.registry} refused the token (private image? add credentials with "
                            "`dockmaster registry login`)")

    async def _async_token(self, challenge: dict[str, str], ref: ImageRef) -> tuple[str, str, str]:
        if not realm_allowed(challenge["realm"], ref):
            raise RegistryError(f"{ref.registry} named a token realm that is not allowed "
                                "(it must be https, or on the registry's own host, and not a loopback or "
                                "link-local address)")
        scope = challenge.get("scope") or f"repository:{ref.repository}:pull"
        key = (challenge["realm"], challenge.get("service", ""), scope)
        if key in self._tokens:
            return key
        params: dict[str, Any] = {"scope": scope}
        if challenge.get("service"):
            params["service"] = challenge["service"]
        # With a login the token endpoint is asked as that user; without one, anonymously (public images).
        login = self.credentials(ref.registry)
        auth_headers = {"Authorization": login.basic()} if login else {}
        try:
            async with self.session.get(challenge["realm"], params=params, timeout=self.timeout, headers=auth_headers,
                                        allow_redirects=False) as resp:
                if resp.status != 200:
                    raise RegistryError(f"token endpoint answered HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise RegistryError(f"cannot get a registry token: {err or type(err).__name__}") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise RegistryError("the token endpoint sent no token")
        self._tokens[key] = token
        return key
