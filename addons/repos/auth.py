"""Git credentials per call: https tokens in an environment-only header, ssh keys with checked host keys."""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass
from pathlib import Path

from .schema import RepoConfig, is_http_url, is_ssh_url, split_credentials

DEFAULT_USERNAME = "git"


@dataclass(frozen=True)
class GitAuth:
    """How to reach one remote; the token lives only in the environment of each git call."""

    url: str
    token: str | None = None
    username: str = DEFAULT_USERNAME
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: int = 30

    @classmethod
    def from_config(cls, conf: RepoConfig, base_dir: Path) -> GitAuth:
        """Build from a config entry; a relative local path is read from the config folder."""
        clean, url_user, url_token = split_credentials(conf["url"])
        if not (is_http_url(clean) or is_ssh_url(clean) or "://" in clean):
            clean = str((base_dir / Path(clean).expanduser()).resolve())
        timeout = max(5, min(60, int(conf["fetch_timeout"].total_seconds() // 2)))
        return cls(
            url=clean,
            token=conf.get("token") or url_token,
            username=conf.get("username") or url_user or DEFAULT_USERNAME,
            # `ssh_key: generate` is resolved to the key file before a repo is built (deploykey.resolve).
            ssh_key=Path(key) if (key := conf.get("ssh_key")) else None,
            known_hosts=conf.get("known_hosts"),
            connect_timeout=timeout,
        )

    @property
    def kind(self) -> str:
        """`ssh`, `https` or `local` (paths, file:// and git://)."""
        if is_ssh_url(self.url):
            return "ssh"
        return "https" if is_http_url(self.url) else "local"

    def basic_header(self) -> str | None:
        """The `Authorization` header value for the token, or None."""
        if not self.token:
            return None
        pair = f"{self.username}:{self.token}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def secrets(self) -> list[str]:
        """Every string that must never be shown: the token and its encoded header."""
        header = self.basic_header()
        return [s for s in (self.token, header, header.split(" ", 1)[1] if header else None) if s]

    def env(self) -> dict[str, str]:
        """Environment for one git call: no prompts, no stored helpers, the header and ssh options."""
        config: list[tuple[str, str]] = [
            # An empty value resets any credential helper from the user's or the system's config,
            # so nothing is ever stored by git and nothing stored is used by accident.
            ("credential.helper", ""),
        ]
        header = self.basic_header()
        if header:
            # GIT_CONFIG_* keeps the header out of argv (visible in ps) and out of .git/config.
            config.append(("http.extraHeader", f"Authorization: {header}"))
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GCM_INTERACTIVE": "never",
            "GIT_CONFIG_COUNT": str(len(config)),
        }
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        if self.kind == "ssh":
            env["GIT_SSH_COMMAND"] = self.ssh_command()
            env["GIT_SSH_VARIANT"] = "ssh"
        return env

    def ssh_command(self) -> str:
        """The ssh command git runs: deploy key only, strict host key checking, never a prompt."""
        argv = [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
        ]
        if self.ssh_key is not None:
            argv += ["-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts is not None:
            argv += [
                "-o", f"UserKnownHostsFile={_ssh_quote(self.known_hosts)}",
                # Only the configured file counts: a system-wide entry must not vouch for a host.
                "-o", "GlobalKnownHostsFile=/dev/null",
            ]
        return shlex.join(argv)


def _ssh_quote(path: Path) -> str:
    """ssh splits file lists on spaces; double quotes keep a path with spaces whole."""
    text = str(path)
    return f'"{text}"' if any(c.isspace() for c in text) else text


def display_url(url: str) -> str:
    """A URL safe to show: any user or token removed."""
    return split_credentials(url)[0]
