"""The `repos:` config block: one entry per git repository, validated as far as config time allows."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict
from urllib.parse import unquote, urlsplit, urlunsplit

import voluptuous as vol

from appliance import cv

# git check-ref-format rules that matter for a branch name written by a person.
_BAD_REF_RE = re.compile(r"(^[-/.])|(\.\.)|([\x00-\x20\x7f~^:?*\[\\])|(@\{)|(/\.)|(//)|(\.lock$)|([/.]$)")


class RepoConfig(TypedDict):
    """One validated entry of `repos:`."""

    name: str
    url: str
    branch: str
    ssh_key: NotRequired[Path | str]
    known_hosts: NotRequired[Path]
    token: NotRequired[str]
    username: NotRequired[str]
    poll: NotRequired[str]
    depth: NotRequired[int]
    fetch_timeout: timedelta


def deploy_key(value: Any) -> Path | str:
    """`generate` (Dockmaster makes the key pair) or an existing private key file."""
    if isinstance(value, str) and value.strip() == "generate":
        return "generate"
    return cv.existing_file(value)


def branch_name(value: Any) -> str:
    """A git branch name (`main`, `release/1.2`), refusing what git itself would refuse."""
    text = cv.string(value).strip()
    if text.startswith("refs/heads/"):
        text = text[len("refs/heads/"):]
    if not text or len(text) > 200 or _BAD_REF_RE.search(text):
        raise vol.Invalid(f"invalid branch name '{text}'")
    return text


def is_ssh_url(url: str) -> bool:
    """True for `ssh://...` and scp-like `user@host:path` remotes."""
    return url.startswith("ssh://") or bool(re.match(r"^[\w.-]+@[\w.-]+:", url))


def is_http_url(url: str) -> bool:
    """True for `https://` and `http://` remotes."""
    return url.startswith(("https://", "http://"))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Split `https://user:token@host/path` into the clean URL, the user and the token."""
    if not is_http_url(url):
        return url, None, None
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    if sep:
        return clean, unquote(user) or None, unquote(password) or None
    # `https://TOKEN@host/...`: a lone user part is how many forges take a token.
    return clean, None, unquote(user) or None


def _check_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Cross-key rules: credentials must match the kind of URL they are used with."""
    url = entry["url"]
    errors: list[vol.Invalid] = []
    _, url_user, url_token = split_credentials(url)
    if (entry.get("ssh_key") or entry.get("known_hosts")) and not is_ssh_url(url):
        key = "ssh_key" if entry.get("ssh_key") else "known_hosts"
        errors.append(vol.Invalid(f"{key} only applies to ssh URLs (ssh:// or user@host:path)", path=[key]))
    if entry.get("token") or entry.get("username"):
        key = "token" if entry.get("token") else "username"
        if not is_http_url(url):
            errors.append(vol.Invalid(f"{key} only applies to https URLs", path=[key]))
        elif url_token and entry.get("token"):
            errors.append(vol.Invalid("give the token either in the URL or as 'token', not both", path=["token"]))
    if url.startswith("http://") and (url_token or entry.get("token")):
        errors.append(vol.Invalid("refusing to send a token over plain http; use https://", path=["url"]))
    if url_user and not url_token:
        errors.append(vol.Invalid("the URL names a user but no token; use 'token: !secret ...'", path=["url"]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return entry


REPO_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required("name"): cv.slug,
            vol.Required("url"): cv.git_url,
            vol.Optional("branch", default="main"): branch_name,
            vol.Optional("ssh_key"): deploy_key,
            vol.Optional("known_hosts"): cv.existing_file,
            vol.Optional("token"): cv.string,
            vol.Optional("username"): cv.string,
            vol.Optional("poll"): cv.cron,
            vol.Optional("depth"): cv.positive_int,
            vol.Optional("fetch_timeout", default="120s"): cv.positive_duration,
        }
    ),
    _check_entry,
)

CONFIG_SCHEMA = vol.Schema(vol.All(cv.ensure_list, [REPO_SCHEMA], cv.unique_names("name")))
