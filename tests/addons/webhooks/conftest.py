"""Webhook test helpers: recorded-format payloads and request signing as each provider does it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "s3cret-for-tests-0123456789abcdef"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
PROVIDERS = ("github", "gitlab", "gitea", "forgejo", "bitbucket", "generic")
# The delivery-id header each provider's fixtures use when a test mints a fresh delivery.
ID_HEADERS = {
    "github": "X-GitHub-Delivery", "gitea": "X-Gitea-Delivery", "forgejo": "X-Forgejo-Delivery",
    "gitlab": "X-Gitlab-Event-UUID", "bitbucket": "X-Request-UUID", "generic": "X-Delivery-Id",
}
PUSH_EVENTS = {
    "github": ("X-GitHub-Event", "push"), "gitea": ("X-Gitea-Event", "push"),
    "forgejo": ("X-Forgejo-Event", "push"), "gitlab": ("X-Gitlab-Event", "Push Hook"),
    "bitbucket": ("X-Event-Key", "repo:push"), "generic": ("X-Event", "push"),
}


def load_payload(name: str) -> dict[str, Any]:
    """A fixture from payloads/: provider, headers, expected parse and body."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def sign(provider: str, body: bytes, secret: str = SECRET, *, signing_secret: str | None = None,
         msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """The signature headers the provider would send for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if provider == "github":
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    if provider == "gitea":
        return {"X-Gitea-Signature": digest}
    if provider == "forgejo":
        return {"X-Forgejo-Signature": digest, "X-Gitea-Signature": digest}
    if provider == "bitbucket":
        return {"X-Hub-Signature": f"sha256={digest}"}
    if provider == "generic":
        return {"X-Signature-256": f"sha256={digest}"}
    headers = {"X-Gitlab-Token": secret}
    if signing_secret:
        headers.update(standard_webhook(body, signing_secret, msg_id=msg_id, timestamp=timestamp))
    return headers


def standard_webhook(body: bytes, secret: str, *, msg_id: str | None = None,
                     timestamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers: webhook-id, webhook-timestamp, webhook-signature (v1,<base64>)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(mac).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}


def push_body(provider: str, branch: str, commit: str, *, nonce: str = "") -> dict[str, Any]:
    """A push body in the provider's format for `branch` at `commit` (from the recorded fixtures)."""
    name = {"gitlab": "gitlab_push", "bitbucket": "bitbucket_push"}.get(provider, f"{provider}_push")
    body = load_payload(name)["body"]
    if provider == "bitbucket":
        new = body["push"]["changes"][0]["new"]
        new["name"] = branch
        new["target"]["hash"] = commit
        new["target"]["date"] = nonce or new["target"]["date"]
    else:
        body["ref"] = f"refs/heads/{branch}"
        body["after"] = commit
        if provider == "gitlab":
            body["checkout_sha"] = commit
        body["nonce"] = nonce
    return body


def delivery(provider: str, body: dict[str, Any], *, secret: str = SECRET, signing_secret: str | None = None,
             delivery_id: str | None = None, event: str | None = None) -> tuple[bytes, dict[str, str]]:
    """Raw bytes and the full header set of one signed delivery."""
    raw = json.dumps(body).encode()
    name, value = PUSH_EVENTS[provider]
    headers = {"Content-Type": "application/json", name: event or value,
               ID_HEADERS[provider]: delivery_id or str(uuid.uuid4())}
    headers.update(sign(provider, raw, secret, signing_secret=signing_secret))
    return raw, headers


@pytest.fixture
def payload() -> Any:
    """Load a recorded-format payload by name."""
    return load_payload


# --- real git remotes and the real app ---------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its output (blocking; tests only)."""
    import subprocess

    env = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.lan", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "t@example.lan", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class Remote:
    """A bare repo on disk plus a work tree that pushes commits to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        self.bare.mkdir(parents=True)
        self.work.mkdir()
        git(self.bare, "init", "-q", "--bare", "-b", "main")
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.counter = 0
        self.commit("stacks/app/compose.yaml", "services: {}\n")

    def commit(self, path: str, text: str, *, branch: str = "main") -> str:
        """Write a file, commit it on `branch` and push; returns the new commit sha."""
        self.counter += 1
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        git(self.work, "checkout", "-q", "-B", branch)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", f"change {self.counter}")
        git(self.work, "push", "-q", "-f", "origin", branch)
        return git(self.work, "rev-parse", "HEAD")

    def stage(self, files: Any, count: int) -> list[str]:
        """Make `count` commits on a side branch (objects in the remote, main untouched); `files(i)` gives each."""
        shas = []
        git(self.work, "checkout", "-q", "-B", "staged")
        for index in range(count):
            for rel, text in files(index).items():
                target = self.work / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            git(self.work, "add", "-A")
            git(self.work, "commit", "-q", "-m", f"staged {index}")
            shas.append(git(self.work, "rev-parse", "HEAD"))
        git(self.work, "push", "-q", "-f", "origin", "staged")
        git(self.work, "checkout", "-q", "main")
        return shas

    async def async_advance(self, sha: str) -> None:
        """Move the remote's main to `sha` the way a push does: a loose ref replaced atomically."""
        ref = self.bare / "refs" / "heads" / "main"
        staging = ref.with_name("main.lock")
        staging.write_text(sha + "\n")
        staging.replace(ref)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A real git remote with one commit on main."""
    return Remote(tmp_path / "git")


def hook_config(remote: Remote, provider: str, **extra: Any) -> dict[str, Any]:
    """Config blocks for one repo on `remote` and its webhook."""
    hook = {"repo": "infra", "provider": provider, "secret": SECRET, **extra}
    return {"repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"}], "webhooks": [hook]}


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll an (async or plain) predicate until it returns something truthy."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def settled(app: Any) -> bool:
    """True when no run is queued or running and no webhook fold is waiting."""
    receiver = app.data.get("webhooks")
    folding = receiver is not None and any(d.pending for d in receiver.debouncers.values())
    return not app.runs.active and not folding


async def webhook_syncs(app: Any) -> list[dict[str, Any]]:
    """Sync runs started by webhooks, oldest first."""
    runs = await app.runs.list(kind="sync", target="infra", limit=500)
    return [r for r in reversed(runs) if r["trigger"] == "webhook"]
