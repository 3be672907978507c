"""Signature checks for webhook deliveries: HMAC-SHA256 per provider, GitLab tokens, Standard Webhooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

# Standard Webhooks: a timestamp further than this from our clock is refused (replay window).
TIMESTAMP_TOLERANCE = 300.0
WHSEC_PREFIX = "whsec_"

PROVIDERS = ("github", "gitlab", "gitea", "forgejo", "bitbucket", "generic")
# Where each HMAC provider puts its signature, in the order they are looked at, and its prefix.
_HMAC_HEADERS: dict[str, tuple[tuple[str, ...], str]] = {
    "github": (("X-Hub-Signature-256",), "sha256="),
    "gitea": (("X-Gitea-Signature", "X-Forgejo-Signature"), ""),
    "forgejo": (("X-Forgejo-Signature", "X-Gitea-Signature"), ""),
    "bitbucket": (("X-Hub-Signature",), "sha256="),
    "generic": (("X-Signature-256",), "sha256="),
}


class SignatureError(Exception):
    """The delivery is not proven to come from the configured sender (answered 401)."""


def hmac_sha256_hex(secret: bytes, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of `body`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def signing_key(secret: str) -> bytes:
    """The Standard Webhooks key: the base64 part of a `whsec_` secret, else the secret's bytes."""
    if secret.startswith(WHSEC_PREFIX):
        try:
            return base64.b64decode(secret[len(WHSEC_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return secret.encode()


def verify_hmac_header(value: str | None, prefix: str, secret: str, body: bytes) -> None:
    """Check one `[prefix]<hex>` HMAC-SHA256 header value against the body, in constant time."""
    if not value:
        raise SignatureError("signature header is missing")
    if prefix and not value.startswith(prefix):
        raise SignatureError(f"signature must start with '{prefix}'")
    sent = value[len(prefix):].strip()
    expected = hmac_sha256_hex(secret.encode(), body)
    # compare_digest needs ASCII input; a non-ASCII header can never match anyway.
    if not sent.isascii() or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise SignatureError("signature does not match the body")


def verify_standard_webhook(
    headers: Mapping[str, str], secret: str, body: bytes, *, now: float | None = None,
    tolerance: float = TIMESTAMP_TOLERANCE,
) -> None:
    """Check `webhook-signature` (`v1,<base64>` of "{id}.{timestamp}.{body}") and the timestamp."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not stamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are all required")
    try:
        sent_at = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance:
        raise SignatureError("webhook-timestamp is more than 5 minutes off")
    try:
        key = signing_key(secret)
    except ValueError as err:
        raise SignatureError(str(err)) from None
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    matched = False
    # The header may carry several space-separated signatures (key rotation); one valid v1 is enough.
    for item in signatures.split():
        version, _, value = item.partition(",")
        if version == "v1" and value.isascii() and hmac.compare_digest(value.encode(), expected):
            matched = True
    if not matched:
        raise SignatureError("webhook-signature does not match")


def verify(
    provider: str, headers: Mapping[str, str], body: bytes, *, secret: str,
    signing_secret: str | None = None, now: float | None = None,
) -> str:
    """Prove a delivery came from the configured sender (else raise SignatureError); returns the scheme used."""
    if not secret:
        raise SignatureError("no secret is configured")  # never accept an unsigned hook
    if provider == "gitlab":
        token = headers.get("X-Gitlab-Token", "")
        if not token or not token.isascii() or not hmac.compare_digest(token.encode(), secret.encode()):
            raise SignatureError("X-Gitlab-Token is missing or wrong")
        if signing_secret or "webhook-signature" in headers:
            verify_standard_webhook(headers, signing_secret or secret, body, now=now)
            return "gitlab-token+standard-webhooks"
        return "gitlab-token"
    names, prefix = _HMAC_HEADERS[provider]
    value = next((headers[name] for name in names if name in headers), None)
    verify_hmac_header(value, prefix, secret, body)
    return f"hmac-sha256:{provider}"
