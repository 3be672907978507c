"""Deploy keys made by Dockmaster (`ssh_key: generate`) and `known_hosts` filled after a confirmed fingerprint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import asyncssh

from .schema import RepoConfig

GENERATE = "generate"
SCAN_TIMEOUT = 15.0

_SCP_RE = re.compile(r"^(?:(?P<user>[\w.-]+)@)?(?P<host>[\w.-]+):(?P<path>.*)$")


def key_path(data_dir: Path, repo: str) -> Path:
    """Where the generated private key of a repo lives (its public key beside it, `.pub`)."""
    return data_dir / "keys" / f"repo-{repo}"


def default_known_hosts(data_dir: Path) -> Path:
    """The known_hosts file of repos with a generated key and no `known_hosts:` of their own."""
    return data_dir / "keys" / "known_hosts"


def ensure_key(path: Path, comment: str) -> str:
    """Make an ed25519 key pair at `path` (0600) unless one is there; returns the public key line (blocks)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    public = path.with_name(path.name + ".pub")
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key())
        public.write_bytes(key.export_public_key())
    elif not public.exists():
        public.write_bytes(asyncssh.read_private_key(str(path)).export_public_key())
    return public.read_text(encoding="utf-8").strip()


def fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line (`ssh-ed25519 AAAA… comment`)."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Host, port and repository path of an ssh remote."""

    host: str
    port: int
    path: str

    @property
    def known_hosts_name(self) -> str:
        """The host as OpenSSH writes it in known_hosts (`[host]:port` off port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def ssh_target(url: str) -> SshTarget | None:
    """Parse `ssh://user@host:port/path` or `user@host:path`; None for anything else."""
    if url.startswith("ssh://"):
        parts = urlsplit(url)
        if not parts.hostname:
            return None
        return SshTarget(parts.hostname, parts.port or 22, parts.path.lstrip("/"))
    match = _SCP_RE.match(url)
    if match and "/" not in match.group("host"):
        return SshTarget(match.group("host"), 22, match.group("path"))
    return None


def where_to_paste(url: str) -> list[dict[str, str]]:
    """Where a forge takes a read-only deploy key for this repository, most likely forge first."""
    target = ssh_target(url)
    if target is None:
        return []
    repo = re.sub(r"\.git$", "", target.path.strip("/"))
    host = target.host
    github = {"forge": "GitHub", "url": f"https://{host}/{repo}/settings/keys",
              "steps": "repository → Settings → Deploy keys → Add deploy key; leave “Allow write access” off"}
    gitlab = {"forge": "GitLab", "url": f"https://{host}/{repo}/-/settings/repository",
              "steps": "project → Settings → Repository → Deploy keys → Add new key; leave “Grant write "
                       "permissions” off"}
    gitea = {"forge": "Gitea / Forgejo", "url": f"https://{host}/{repo}/settings/keys",
             "steps": "repository → Settings → Deploy Keys → Add Deploy Key; leave “Enable write access” off"}
    if "github" in host:
        return [github]
    if "gitlab" in host:
        return [gitlab]
    if any(word in host for word in ("gitea", "forgejo", "codeberg")):
        return [gitea]
    return [gitea, gitlab, github]


async def async_server_key(host: str, port: int) -> asyncssh.SSHKey:
    """The host key an ssh server offers (what ssh-keyscan prints); nothing is authenticated or run."""
    async with asyncio.timeout(SCAN_TIMEOUT):
        key = await asyncssh.get_server_host_key(host, port)
    if key is None:
        raise OSError(f"{host}:{port} offered no host key")
    return key


def known_hosts_line(target: SshTarget, key: asyncssh.SSHKey) -> str:
    """The known_hosts line for `target` (no comment)."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{target.known_hosts_name} {algorithm} {blob}"


def is_known(known_hosts: Path, line: str) -> bool:
    """True when the exact host and key are already in the file (blocks)."""
    if not known_hosts.exists():
        return False
    wanted = line.split()[:3]
    return any(existing.split()[:3] == wanted for existing in known_hosts.read_text(encoding="utf-8").splitlines())


def append_known_host(known_hosts: Path, line: str) -> None:
    """Add one line to a known_hosts file, making it (0600) when missing (blocks)."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(known_hosts, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def describe(public_line: str, url: str, path: Path) -> dict[str, Any]:
    """The API and page view of a generated deploy key (never the private part)."""
    return {"public_key": public_line, "fingerprint": fingerprint(public_line), "private_key_file": str(path),
            "where": where_to_paste(url)}


def resolve(conf: RepoConfig, data_dir: Path, app_name: str) -> tuple[RepoConfig, dict[str, Any] | None]:
    """A repo entry with `ssh_key: generate` turned into its key file (made on first use) and known_hosts.

    Returns the entry to use and the deploy key's view, or the entry unchanged and None (blocks).
    """
    if conf.get("ssh_key") != GENERATE:
        return conf, None
    path = key_path(data_dir, conf["name"])
    public = ensure_key(path, f"dockmaster-{app_name}-{conf['name']}")
    known = Path(conf.get("known_hosts") or default_known_hosts(data_dir))
    if not known.exists():
        append_known_host_file(known)
    resolved = cast(RepoConfig, {**conf, "ssh_key": path, "known_hosts": known})
    return resolved, describe(public, conf["url"], path)


def append_known_host_file(known_hosts: Path) -> None:
    """Create an empty known_hosts file (0600) and its folder (blocks)."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(known_hosts, os.O_WRONLY | os.O_CREAT, 0o600))


async def async_trust(conf: RepoConfig, data_dir: Path, app_name: str, *, confirm: Any, out: Any) -> int:
    """`dockmaster repo trust`: show the server's host key fingerprint and, once confirmed, add it to known_hosts.

    `confirm(question) -> bool` asks the user; `out(text)` prints. Returns a CLI exit code.
    """
    loop = asyncio.get_running_loop()
    entry, _key = await loop.run_in_executor(None, resolve, conf, data_dir, app_name)
    target = ssh_target(entry["url"])
    if target is None:
        out(f"repo '{conf['name']}' is not an ssh remote ({entry['url']}); nothing to trust")
        return 2
    known = entry.get("known_hosts")
    if known is None:
        out(f"repo '{conf['name']}' has no known_hosts file: set known_hosts: in its config (or use ssh_key: generate)")
        return 2
    known = Path(known)
    try:
        key = await async_server_key(target.host, target.port)
    except (OSError, TimeoutError, asyncssh.Error) as err:
        out(f"cannot reach {target.host}:{target.port}: {err}")
        return 1
    line = known_hosts_line(target, key)
    if await loop.run_in_executor(None, is_known, known, line):
        out(f"{target.known_hosts_name} is already trusted in {known} ({key.get_fingerprint('sha256')})")
        return 0
    out(f"{target.known_hosts_name} offers this {key.get_algorithm()} host key:\n\n"
        f"    {key.get_fingerprint('sha256')}\n\n"
        "Compare it with the fingerprint your forge publishes (GitHub, GitLab and Codeberg list theirs in their "
        "documentation; for your own server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it).")
    if not confirm(f"Trust this key and add it to {known}? [y/N] "):
        out("not trusted; nothing was written")
        return 1
    await loop.run_in_executor(None, append_known_host, known, line)
    out(f"added {target.known_hosts_name} to {known}")
    return 0
