"""Signature checks: the published GitHub vector, each provider's scheme, Standard Webhooks timing."""

from __future__ import annotations

import time

import pytest
from multidict import CIMultiDict

from addons.webhooks.signatures import SignatureError, hmac_sha256_hex, verify, verify_hmac_header

from .conftest import SECRET, SIGNING_SECRET, sign, standard_webhook

BODY = b'{"ref":"refs/heads/main","after":"9c1f4e2a7b3d5f6081a2b3c4d5e6f708192a3b4c"}'


def test_github_published_vector() -> None:
    """GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!"."""
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!") == expected
    headers = CIMultiDict({"X-Hub-Signature-256": f"sha256={expected}"})
    assert verify("github", headers, b"Hello, World!", secret="It's a Secret to Everybody") == "hmac-sha256:github"
    with pytest.raises(SignatureError):
        verify("github", headers, b"Hello, World?", secret="It's a Secret to Everybody")


@pytest.mark.parametrize("provider", ["github", "gitea", "forgejo", "bitbucket", "generic", "gitlab"])
def test_each_provider_accepts_its_own_signature(provider: str) -> None:
    headers = CIMultiDict(sign(provider, BODY))
    assert verify(provider, headers, BODY, secret=SECRET)
    # Header names are case-insensitive on the wire.
    lowered = CIMultiDict({k.lower(): v for k, v in headers.items()})
    assert verify(provider, lowered, BODY, secret=SECRET)


@pytest.mark.parametrize("provider", ["github", "gitea", "forgejo", "bitbucket", "generic", "gitlab"])
def test_each_provider_refuses_a_wrong_secret_and_a_changed_body(provider: str) -> None:
    with pytest.raises(SignatureError):
        verify(provider, CIMultiDict(sign(provider, BODY, "another-secret-entirely!")), BODY, secret=SECRET)
    if provider != "gitlab":  # a token does not cover the body; that is why the UI says "replayable"
        with pytest.raises(SignatureError):
            verify(provider, CIMultiDict(sign(provider, BODY)), BODY + b" ", secret=SECRET)
    with pytest.raises(SignatureError):
        verify(provider, CIMultiDict(), BODY, secret=SECRET)


def test_github_refuses_sha1_and_the_sha1_header() -> None:
    digest = hmac_sha256_hex(SECRET.encode(), BODY)
    for headers in ({"X-Hub-Signature-256": f"sha1={digest}"}, {"X-Hub-Signature": f"sha256={digest}"},
                    {"X-Hub-Signature-256": digest}, {"X-Hub-Signature-256": f"sha256={digest[:-1]}"}):
        with pytest.raises(SignatureError):
            verify("github", CIMultiDict(headers), BODY, secret=SECRET)


def test_non_ascii_signature_is_refused_not_crashing() -> None:
    with pytest.raises(SignatureError):
        verify_hmac_header("sha256=ü" * 10, "sha256=", SECRET, BODY)


def test_an_empty_secret_never_verifies() -> None:
    with pytest.raises(SignatureError):
        verify("gitlab", CIMultiDict({"X-Gitlab-Token": ""}), BODY, secret="")


def test_gitlab_standard_webhooks_signature() -> None:
    headers = CIMultiDict(sign("gitlab", BODY, signing_secret=SIGNING_SECRET))
    assert verify("gitlab", headers, BODY, secret=SECRET, signing_secret=SIGNING_SECRET) == \
        "gitlab-token+standard-webhooks"
    # The signature covers the body and the id.
    with pytest.raises(SignatureError):
        verify("gitlab", headers, BODY + b"x", secret=SECRET, signing_secret=SIGNING_SECRET)
    tampered = headers.copy()
    tampered["webhook-id"] = "msg_other"
    with pytest.raises(SignatureError):
        verify("gitlab", tampered, BODY, secret=SECRET, signing_secret=SIGNING_SECRET)
    # Configured signing means a token alone is not enough.
    with pytest.raises(SignatureError):
        verify("gitlab", CIMultiDict({"X-Gitlab-Token": SECRET}), BODY, secret=SECRET, signing_secret=SIGNING_SECRET)


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (-290, True), (290, True), (-301, False), (301, False),
                                            (-86400, False)])
def test_standard_webhooks_timestamp_window(offset: int, ok: bool) -> None:
    now = time.time()
    headers = CIMultiDict({"X-Gitlab-Token": SECRET,
                           **standard_webhook(BODY, SIGNING_SECRET, timestamp=int(now) + offset)})
    if ok:
        verify("gitlab", headers, BODY, secret=SECRET, signing_secret=SIGNING_SECRET, now=now)
    else:
        with pytest.raises(SignatureError, match="5 minutes"):
            verify("gitlab", headers, BODY, secret=SECRET, signing_secret=SIGNING_SECRET, now=now)


def test_standard_webhooks_header_without_configured_key_is_still_verified() -> None:
    """A `webhook-signature` that is present is always checked (with the token as key here)."""
    forged = CIMultiDict({"X-Gitlab-Token": SECRET, **standard_webhook(BODY, SIGNING_SECRET)})
    with pytest.raises(SignatureError):
        verify("gitlab", forged, BODY, secret=SECRET)


def test_rotated_keys_any_v1_signature_may_match() -> None:
    headers = standard_webhook(BODY, SIGNING_SECRET)
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]
    verify("gitlab", CIMultiDict({"X-Gitlab-Token": SECRET, **headers}), BODY, secret=SECRET,
           signing_secret=SIGNING_SECRET)
