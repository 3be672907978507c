"""1,000 forged deliveries per provider start nothing and are all answered 401/4xx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import random
from typing import Any

from appliance.keys import APPLIANCE_KEY

from .conftest import SECRET, SIGNING_SECRET, Remote, delivery, push_body, settled, wait_for

PER_PROVIDER = 1000
OVERSIZED_EVERY = 50  # oversized bodies are 1 MiB each: a sample keeps the test fast
# (repo name, provider, extra hook config): GitLab once with Standard Webhooks signing, once token only.
TARGETS = [
    ("gh", "github", {}), ("gl", "gitlab", {"signing_secret": SIGNING_SECRET}), ("gltoken", "gitlab", {}),
    ("gt", "gitea", {}), ("fj", "forgejo", {}), ("bb", "bitbucket", {}), ("gen", "generic", {}),
]
SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Hub-Signature", "X-Gitea-Signature", "X-Forgejo-Signature",
                     "X-Signature-256", "X-Gitlab-Token", "webhook-signature")
BASE_VARIANTS = ("no_signature", "wrong_secret", "sha1", "truncated", "one_byte", "header_case")


def _config(remote: Remote) -> dict[str, Any]:
    return {
        "repos": [{"name": name, "url": str(remote.bare), "branch": "main"} for name, _, _ in TARGETS],
        "webhooks": [{"repo": name, "provider": provider, "secret": SECRET, "debounce": 0, **extra}
                     for name, provider, extra in TARGETS],
    }


def _sig_headers(headers: dict[str, str]) -> list[str]:
    return [k for k in headers if k in SIGNATURE_HEADERS]


def forge(provider: str, signed: bool, variant: str, rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """One forged delivery of the given kind, built from a valid one."""
    sha = f"{rng.getrandbits(160):040x}"
    body = push_body(provider, "main", sha, nonce=str(rng.random()))
    if variant == "oversized":
        body["padding"] = "x" * (1024 * 1024)
    raw, headers = delivery(provider, body, signing_secret=SIGNING_SECRET if signed else None)
    main = "webhook-signature" if signed else _sig_headers(headers)[0]
    if variant == "no_signature":
        for key in _sig_headers(headers) if not signed else ["webhook-signature"]:
            del headers[key]
    elif variant == "wrong_secret":
        wrong = "".join(rng.choice("abcdef0123456789") for _ in range(32))
        if signed:
            import base64

            wrong_key = "whsec_" + base64.b64encode(wrong.encode()).decode()
            _, other = delivery(provider, body, signing_secret=wrong_key)
            headers["webhook-signature"] = other["webhook-signature"]
        else:
            _, other = delivery(provider, body, secret=wrong)
            for key in _sig_headers(headers):
                headers[key] = other[key]
    elif variant == "sha1":
        digest = hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
        value = {"gitea": digest, "forgejo": digest}.get(provider, f"sha1={digest}")
        if signed:
            value = "v1," + __import__("base64").b64encode(bytes.fromhex(digest)).decode()
        for key in _sig_headers(headers) if not signed else [main]:
            headers[key] = value
    elif variant == "truncated":
        for key in _sig_headers(headers) if not signed else [main]:
            headers[key] = headers[key][: rng.randrange(0, len(headers[key]))]
    elif variant == "one_byte":
        position = rng.randrange(len(raw))
        raw = raw[:position] + bytes([raw[position] ^ (1 << rng.randrange(8))]) + raw[position + 1:]
    elif variant == "header_case":
        for key in _sig_headers(headers) if not signed else [main]:
            value = headers.pop(key)
            # A case change in the value breaks it; a case change in the name alone must not help a wrong value.
            flipped = value.upper() if value != value.upper() else value.lower()
            if flipped == value or rng.random() < 0.5:
                _, other = delivery(provider, body, secret="not-the-secret-at-all-123")
                flipped = other.get(key, "v1,AAAA")
            name = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in key)
            headers[name] = flipped
    return raw, headers


async def test_forged_deliveries_start_nothing(make_client: Any, remote: Remote) -> None:
    client = await make_client(_config(remote))
    app = client.server.app[APPLIANCE_KEY]
    assert "webhooks" in app.loaded_addons, app.addon_errors
    await wait_for(lambda: settled(app), timeout=60)
    before = {r["id"] for r in await app.runs.list(limit=1000)}
    rng = random.Random(20241104)
    statuses: dict[str, dict[int, int]] = {}
    for repo, provider, extra in TARGETS:
        signed = "signing_secret" in extra
        variants = [v for v in BASE_VARIANTS if not (provider == "gitlab" and not signed and v == "one_byte")]
        requests = []
        for index in range(PER_PROVIDER):
            variant = "oversized" if index % OVERSIZED_EVERY == 0 else variants[index % len(variants)]
            requests.append(forge(provider, signed, variant, rng))
        counts: dict[int, int] = {}
        for start in range(0, len(requests), 25):
            batch = requests[start:start + 25]
            responses = await asyncio.gather(*(client.post(f"/hooks/{repo}", data=io.BytesIO(raw), headers=headers)
                                               for raw, headers in batch))
            for resp in responses:
                counts[resp.status] = counts.get(resp.status, 0) + 1
                if resp.status != 413:  # aiohttp may answer an oversized upload before our handler runs
                    assert (await resp.json())["error"]["code"] in ("unauthorized", "payload_too_large")
        statuses[repo] = counts
    for repo, counts in statuses.items():
        assert sum(counts.values()) == PER_PROVIDER
        assert set(counts) <= {401, 413}, (repo, counts)
        assert counts[413] == PER_PROVIDER // OVERSIZED_EVERY, (repo, counts)
    await asyncio.sleep(0.3)
    new_runs = [r for r in await app.runs.list(limit=1000) if r["id"] not in before]
    assert new_runs == []  # no sync, no fold, no deploy
    await app.store.flush()
    rows = await app.store.fetchall("SELECT outcome, COUNT(*) AS n FROM webhook_deliveries GROUP BY outcome")
    assert {row["outcome"] for row in rows} <= {"bad_signature", "too_large"}
    assert SECRET not in json.dumps(await app.store.fetchall("SELECT * FROM audit"))
    # Control: the same harness without the forgery is accepted, so the refusals above are real.
    for repo, provider, extra in TARGETS:
        sha = f"{rng.getrandbits(160):040x}"
        raw, headers = delivery(provider, push_body(provider, "main", sha),
                                signing_secret=extra.get("signing_secret"))
        resp = await client.post(f"/hooks/{repo}", data=raw, headers=headers)
        assert resp.status == 202, (repo, await resp.text())
