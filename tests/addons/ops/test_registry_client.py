"""The registry client: reference parsing, and the anonymous Bearer token flow of Docker Hub and ghcr."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from addons.ops.registry_client import (
    DOCKER_HUB,
    MANIFEST_ACCEPT,
    RegistryClient,
    RegistryError,
    parse_challenge,
    parse_ref,
    realm_allowed,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag", "repo_key"),
    [
        ("busybox", DOCKER_HUB, "library/busybox", "latest", "busybox"),
        ("nginx:1.27", DOCKER_HUB, "library/nginx", "1.27", "nginx"),
        ("me/app:2", DOCKER_HUB, "me/app", "2", "me/app"),
        ("ghcr.io/owner/tool:v1", "ghcr.io", "owner/tool", "v1", "ghcr.io/owner/tool"),
        ("127.0.0.1:5000/x/y", "127.0.0.1:5000", "x/y", "latest", "127.0.0.1:5000/x/y"),
    ],
)
def test_parse_ref(reference, registry, repository, tag, repo_key) -> None:
    ref = parse_ref(reference)
    assert ref is not None
    assert (ref.registry, ref.repository, ref.tag, ref.repo_key) == (registry, repository, tag, repo_key)
    assert ref.insecure is registry.startswith("127.")


def test_pinned_references_are_not_checked() -> None:
    assert parse_ref("me/app@" + DIGEST) is None


def test_parse_challenge() -> None:
    header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'
    assert parse_challenge(header) == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                                       "scope": "repository:library/busybox:pull"}
    assert parse_challenge('Basic realm="x"') is None


async def test_token_flow(aiohttp_server) -> None:
    """A 401 challenge, an anonymous token from the realm, then the digest on the retry (as ghcr does)."""
    seen: list[dict] = []

    async def manifest(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "accept": request.headers.get("Accept")})
        if request.headers.get("Authorization") != "Bearer anon-token":
            realm = f"http://127.0.0.1:{request.url.port}/token"
            challenge = f'Bearer realm="{realm}",service="test-registry",scope="repository:owner/tool:pull"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.Response(headers={"Docker-Content-Digest": DIGEST})

    async def token(request: web.Request) -> web.Response:
        assert request.query["service"] == "test-registry"
        assert request.query["scope"] == "repository:owner/tool:pull"
        return web.json_response({"token": "anon-token"})

    app = web.Application()
    app.router.add_route("HEAD", "/v2/owner/tool/manifests/v1", manifest)
    app.router.add_get("/token", token)
    server = await aiohttp_server(app, host="127.0.0.1")
    ref = parse_ref(f"127.0.0.1:{server.port}/owner/tool:v1")
    async with aiohttp.ClientSession() as session:
        client = RegistryClient(session)
        assert await client.async_remote_digest(ref) == DIGEST
        assert await client.async_remote_digest(ref) == DIGEST  # the token is reused
    assert [s["auth"] for s in seen] == [None, "Bearer anon-token", "Bearer anon-token"]
    assert seen[0]["accept"] == MANIFEST_ACCEPT


async def test_private_registry_without_bearer_challenge(aiohttp_server) -> None:
    async def manifest(request: web.Request) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="private"'})

    app = web.Application()
    app.router.add_route("HEAD", "/v2/me/secret/manifests/latest", manifest)
    server = await aiohttp_server(app, host="127.0.0.1")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RegistryError, match=r"wants credentials \(add them with `dockmaster registry login`"):
            await RegistryClient(session).async_remote_digest(parse_ref(f"127.0.0.1:{server.port}/me/secret"))


@pytest.mark.parametrize(
    ("registry", "realm", "allowed"),
    [
        ("ghcr.io", "https://ghcr.io/token", True),
        ("registry-1.docker.io", "https://auth.docker.io/token", True),
        ("127.0.0.1:5000", "http://127.0.0.1:5000/token", True),  # the registry's own host
        ("ghcr.io", "http://auth.example.org/token", False),  # plain http to another host
        ("ghcr.io", "https://127.0.0.1/token", False),
        ("ghcr.io", "https://[::1]:8099/api/v1/status", False),
        ("ghcr.io", "https://169.254.169.254/latest/meta-data/", False),
        ("ghcr.io", "https://[fe80::1]/token", False),
        ("ghcr.io", "https://localhost/token", False),
        ("ghcr.io", "file:///etc/passwd", False),
        ("127.0.0.1:5000", "http://localhost:8099/token", False),
    ],
)
def test_token_realm_must_be_https_or_the_registry_and_never_loopback(registry, realm, allowed) -> None:
    ref = parse_ref(f"{registry}/owner/tool:v1")
    assert realm_allowed(realm, ref) is allowed


async def test_a_realm_on_another_loopback_host_is_never_asked(aiohttp_server) -> None:
    asked: list[str] = []

    async def manifest(request: web.Request) -> web.Response:
        realm = f"http://localhost:{request.url.port}/token"
        return web.Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'})

    async def token(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"token": "t"})

    app = web.Application()
    app.router.add_route("HEAD", "/v2/owner/tool/manifests/v1", manifest)
    app.router.add_get("/token", token)
    server = await aiohttp_server(app, host="127.0.0.1")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RegistryError, match="token realm that is not allowed"):
            await RegistryClient(session).async_remote_digest(parse_ref(f"127.0.0.1:{server.port}/owner/tool:v1"))
    assert asked == []
