"""Edits to the user's config.yaml and secrets.yaml that keep comments and formatting, written atomically."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.util import load_yaml_guess_indent

from .errors import Conflict
from .yaml import SECRETS_FILE


class ConfigWriter:
    """Adds `auth` entries to the config (as `!secret` references) and their values to secrets.yaml.

    All methods block on file I/O and must run in an executor. The secrets file is written first, so
    the config never names a secret that does not exist yet; each file is replaced with `os.replace`
    after an fsync, so a crash leaves either the old or the new file, never a torn one.
    """

    def __init__(self, config_path: Path) -> None:
        """Edit `config_path` and the `secrets.yaml` beside it."""
        self.config_path = Path(config_path)
        self.secrets_path = self.config_path.parent / SECRETS_FILE

    def snapshot(self) -> dict[Path, str | None]:
        """The current text of both files (None for a missing one), for `restore`."""
        return {p: p.read_text(encoding="utf-8") if p.exists() else None for p in (self.secrets_path, self.config_path)}

    def restore(self, saved: dict[Path, str | None]) -> None:
        """Put both files back as `snapshot` found them."""
        for path, text in saved.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, text)

    def add_user(self, username: str, password_hash: str) -> str:
        """Add a user under `auth.users`; returns the name of the secret holding its hash."""
        return self._add_entry("users", "username", username, "password_hash",
                               password_hash, f"{username}_password_hash")

    def add_token(self, name: str, token_hash: str, scopes: list[str]) -> str:
        """Add an API token under `auth.tokens`; returns the name of the secret holding its hash."""
        return self._add_entry("tokens", "name", name, "token_hash", token_hash, f"{name}_token_hash",
                               extra={"scopes": scopes})

    def _add_entry(self, section: str, key: str, value: str, hash_key: str, hash_value: str,
                   secret_hint: str, extra: dict[str, Any] | None = None) -> str:
        text = self.config_path.read_text(encoding="utf-8") if self.config_path.exists() else ""
        yaml, config = _load(text)
        if config is None:
            config = CommentedMap()
        if not isinstance(config, CommentedMap):
            raise Conflict(f"{self.config_path.name} is not a mapping of top-level keys")
        auth = config.get("auth")
        if auth is None:
            auth = config["auth"] = CommentedMap()
        if not isinstance(auth, CommentedMap):
            raise Conflict(f"auth in {self.config_path.name} is not a plain mapping (an !include?); "
                           "add the entry there by hand")
        entries = auth.get(section)
        if entries is None:
            entries = auth[section] = CommentedSeq()
        if not isinstance(entries, CommentedSeq):
            raise Conflict(f"auth.{section} in {self.config_path.name} is not a plain list; add the entry by hand")
        if any(isinstance(e, dict) and str(e.get(key)) == value for e in entries):
            raise Conflict(f"auth.{section} already has an entry named '{value}'")
        secrets_text = self.secrets_path.read_text(encoding="utf-8") if self.secrets_path.exists() else ""
        secrets_yaml, secrets = _load(secrets_text)
        if secrets is None:
            secrets = CommentedMap()
        if not isinstance(secrets, CommentedMap):
            raise Conflict(f"{SECRETS_FILE} is not a mapping of name: value")
        secret_name = _free_name(secret_hint, secrets)
        secrets[secret_name] = hash_value
        entry = CommentedMap()
        entry[key] = value
        entry[hash_key] = TaggedScalar(secret_name, tag="!secret")
        for extra_key, extra_value in (extra or {}).items():
            entry[extra_key] = CommentedSeq(extra_value) if isinstance(extra_value, list) else extra_value
            if isinstance(extra_value, list):
                entry[extra_key].fa.set_flow_style()
        entries.append(entry)
        atomic_write(self.secrets_path, _dump(secrets_yaml, secrets), mode=0o600)
        atomic_write(self.config_path, _dump(yaml, config))
        return secret_name


def _load(text: str) -> tuple[YAML, Any]:
    """A round-trip loader set to the file's own indentation, and the loaded document."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's long lines
    if not text.strip():
        yaml.indent(mapping=2, sequence=4, offset=2)
        return yaml, None
    _, indent, offset = load_yaml_guess_indent(text)
    if offset is None:  # no block sequence yet: `indent` is the mapping indent; new lists get `  - item`
        mapping = indent or 2
        yaml.indent(mapping=mapping, sequence=max(mapping, 4), offset=2)
    else:  # `indent` is where a sequence item's content starts, `offset` where its dash is
        yaml.indent(mapping=max(indent - offset, 2) if offset else indent, sequence=indent, offset=offset)
    return yaml, yaml.load(text)


def _dump(yaml: YAML, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _free_name(hint: str, taken: dict[str, Any]) -> str:
    name, number = hint, 2
    while name in taken:
        name, number = f"{hint}_{number}", number + 1
    return name


def atomic_write(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace `path` with `text` in one step (temp file, fsync, rename); keeps the old mode unless `mode` is given."""
    path = Path(path)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself is durable once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
