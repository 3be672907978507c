"""Core config schemas and `check_config()`, which gathers every problem with its file and line."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from . import cv
from .const import CORE_DOMAINS, DEFAULT_PORT, SCOPES
from .http.tls import TLS_SCHEMA
from .retention import RETENTION_SCHEMA
from .yaml import LoadIssue, Mark, NodeDict, Secret, load_config_yaml, locate, mark_of, strip_marks

DOCKMASTER_SCHEMA = vol.Schema(
    {
        vol.Optional("name", default="dockmaster"): cv.string,
        vol.Optional("data_dir"): cv.path,
        vol.Optional("time_zone", default="UTC"): cv.time_zone,
        vol.Optional("log_level", default="info"): cv.log_level,
        vol.Optional("retention", default={}): RETENTION_SCHEMA,
    }
)

HTTP_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="0.0.0.0"): cv.string,
        vol.Optional("port", default=DEFAULT_PORT): cv.port,
        vol.Optional("base_url"): cv.url,
        vol.Optional("trusted_proxies", default=[]): vol.All(cv.ensure_list, [cv.ip_network]),
        vol.Optional("tls"): TLS_SCHEMA,
        vol.Optional("session_idle_timeout", default="8h"): cv.positive_duration,
        vol.Optional("session_max_age", default="7d"): cv.positive_duration,
        vol.Optional("max_websockets", default=64): cv.positive_int,
        vol.Optional("max_websockets_per_identity", default=8): cv.positive_int,
    }
)

# Error messages, not secrets.
_PASSWORD_HASH_MSG = "password_hash must be an argon2id hash made by `dockmaster hash-password`"  # noqa: S105
_TOKEN_HASH_MSG = "token_hash must look like sha256:<64 hex digits> (made by `dockmaster token create NAME`)"  # noqa: S105

_USER_SCHEMA = vol.Schema(
    {
        vol.Required("username"): cv.slug,
        vol.Required("password_hash"): vol.All(cv.string, vol.Match(r"^\$argon2id\$", msg=_PASSWORD_HASH_MSG)),
    }
)
_TOKEN_SCHEMA = vol.Schema(
    {
        vol.Required("name"): cv.slug,
        vol.Required("token_hash"): vol.All(cv.string, vol.Match(r"^sha256:[0-9a-f]{64}$", msg=_TOKEN_HASH_MSG)),
        vol.Optional("scopes", default=["read"]): vol.All(cv.ensure_list, [cv.one_of(*SCOPES)]),
    }
)
AUTH_SCHEMA = vol.Schema(
    {
        vol.Optional("users", default=[]): vol.All(cv.ensure_list, [_USER_SCHEMA], cv.unique_names("username")),
        vol.Optional("tokens", default=[]): vol.All(cv.ensure_list, [_TOKEN_SCHEMA], cv.unique_names("name")),
        vol.Optional("login_attempts", default=5): cv.positive_int,
        vol.Optional("address_attempts", default=20): cv.positive_int,
        vol.Optional("global_attempts", default=200): cv.positive_int,
        vol.Optional("lockout", default="5m"): cv.positive_duration,
    }
)

CORE_SCHEMAS: dict[str, vol.Schema] = {
    "dockmaster": DOCKMASTER_SCHEMA,
    "http": HTTP_SCHEMA,
    "auth": AUTH_SCHEMA,
}


@dataclass(slots=True)
class ConfigIssue:
    """One located config problem."""

    path: str
    message: str
    mark: Mark | None = None

    def __str__(self) -> str:
        """Render as `path: message (file, line N)`."""
        where = f" ({self.mark})" if self.mark else ""
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message}{where}"

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly form."""
        return {
            "path": self.path,
            "message": self.message,
            "file": self.mark.file if self.mark else None,
            "line": self.mark.line if self.mark else None,
        }


@dataclass(slots=True)
class CheckResult:
    """The outcome of `check_config`: validated blocks per domain and every issue found."""

    path: Path
    domains: dict[str, Any] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    invalid_domains: set[str] = field(default_factory=set)
    # Problems that do not stop anything but should be fixed (e.g. key files others can read).
    warnings: list[ConfigIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no issue was found."""
        return not self.issues


def format_path(path: list[Any] | tuple[Any, ...]) -> str:
    """Render a key path as `stacks[2].path`."""
    out = ""
    for part in path:
        part = getattr(part, "schema", part)
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _schema_keys_at(schema: Any, path: list[Any]) -> list[str]:
    """Best effort: the keys a schema allows at `path`, for 'did you mean' hints."""
    node = schema.schema if isinstance(schema, vol.Schema) else schema
    for part in [*path, None]:
        while True:
            if isinstance(node, vol.Schema):
                node = node.schema
            elif isinstance(node, vol.All | vol.Any):
                dicts = [v for v in node.validators if isinstance(v, dict | list | vol.Schema)]
                if not dicts:
                    return []
                node = dicts[0]
            else:
                break
        if part is None:
            break
        if isinstance(part, int) and isinstance(node, list) and node:
            node = node[0]
        elif isinstance(node, dict):
            match = [v for k, v in node.items() if getattr(k, "schema", k) == part]
            if not match:
                return []
            node = match[0]
        else:
            return []
    if isinstance(node, dict):
        return [str(getattr(k, "schema", k)) for k in node]
    return []


def _issues_from_invalid(
    domain: str, schema: vol.Schema, raw: Any, err: vol.Invalid
) -> list[ConfigIssue]:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    issues = []
    for error in errors:
        path = [domain, *error.path]
        mark = locate(raw, path)
        message = error.msg
        if message == "extra keys not allowed" and error.path:
            key = str(getattr(error.path[-1], "schema", error.path[-1]))
            message = f"unknown key '{key}'"
            allowed = _schema_keys_at(schema, list(error.path[:-1]))
            hints = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            if hints:
                message += f", did you mean '{hints[0]}'?"
            elif allowed:
                message += f" (allowed: {', '.join(sorted(allowed))})"
        elif message == "required key not provided":
            message = f"required key '{getattr(error.path[-1], 'schema', error.path[-1])}' is missing"
            path = path[:-1]
            mark = locate(raw, path)
            path = [*path, error.path[-1]]
        elif error.error_message and "expected" in message and error.path:
            message = message.replace(" for dictionary value", "")
        issues.append(ConfigIssue(format_path(path), message, mark))
    return issues


def validate_domain(domain: str, schema: vol.Schema, raw: Any, value: Any) -> tuple[Any, list[ConfigIssue]]:
    """Validate one top-level block, returning the value and the located issues."""
    try:
        return schema(strip_marks(value) if value is not None else {}), []
    except vol.Invalid as err:
        return None, _issues_from_invalid(domain, schema, raw, err)


def _load_issue(issue: LoadIssue, raw: Any = None) -> ConfigIssue:
    path = issue.path or (_path_of_mark(raw, issue.mark) if issue.mark else ())
    return ConfigIssue(format_path(path or ()), issue.message, issue.mark)


def _path_of_mark(node: Any, mark: Mark, prefix: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The key path of the value written at `mark` (a missing secret or env var), for the message."""
    if isinstance(node, dict):
        for key, value in node.items():
            found = _path_of_mark(value, mark, (*prefix, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _path_of_mark(value, mark, (*prefix, index))
            if found is not None:
                return found
    elif prefix and mark_of(node) == mark:
        return prefix
    return None


def check_config(path: Path, *, secrets_file: Path | None = None) -> CheckResult:
    """Load and validate a config file, gathering every problem; blocks on file I/O."""
    from .loader import AddonRegistry  # the loader imports this module's schemas

    path = Path(path)
    result = CheckResult(path=path)
    raw, load_issues = load_config_yaml(path, secrets_file=secrets_file)
    result.issues.extend(_load_issue(issue, raw) for issue in load_issues)
    if raw is None:
        if not load_issues:
            result.issues.append(ConfigIssue("", "config file is empty", Mark(path.name, 1)))
        return result
    if not isinstance(raw, dict):
        result.issues.append(ConfigIssue("", "config must be a mapping of top-level keys", locate(raw, [])))
        return result

    registry = AddonRegistry(config_dir=path.parent)
    registry.load_platforms()
    seen_marks = {issue.mark for issue in result.issues if issue.mark}
    for domain, value in raw.items():
        domain = str(domain)
        schema = CORE_SCHEMAS.get(domain)
        if schema is None:
            addon = registry.get(domain)
            if addon is None:
                hint = difflib.get_close_matches(domain, [*CORE_DOMAINS, *registry.available()], n=1)
                msg = f"unknown top-level key '{domain}' (no such addon)"
                if hint:
                    msg += f", did you mean '{hint[0]}'?"
                mark = raw.key_marks.get(domain) if isinstance(raw, NodeDict) else None
                result.issues.append(ConfigIssue(domain, msg, mark))
                result.invalid_domains.add(domain)
                continue
            if addon.error:
                result.issues.append(ConfigIssue(domain, addon.error, locate(raw, [domain])))
                result.invalid_domains.add(domain)
                continue
            schema = addon.config_schema
        validated, issues = validate_domain(domain, schema, raw, value)
        # A value already reported while loading (missing secret, bad include) is not reported twice.
        issues = [issue for issue in issues if issue.mark not in seen_marks]
        if issues or validated is None:
            result.issues.extend(issues)
            result.invalid_domains.add(domain)
        else:
            result.domains[domain] = validated
    for domain, schema in CORE_SCHEMAS.items():
        if domain not in raw:
            result.domains[domain] = schema({})
    result.issues.sort(key=lambda i: (i.mark.file if i.mark else "", i.mark.line if i.mark else 0))
    _hide_secrets(result.issues, raw)
    result.warnings = readable_secret_files(path, secrets_file or path.parent / "secrets.yaml", result.domains)
    return result


# Config keys whose value is a file that must stay private (private keys, age identities).
KEY_FILE_KEYS = frozenset({"ssh_key", "sops_age_key_file", "key"})


def _key_files(node: Any, prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{prefix}.{key}" if prefix else str(key)
            if key in KEY_FILE_KEYS and isinstance(value, str | Path):
                found.append((where, str(value)))
            else:
                found.extend(_key_files(value, where))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_key_files(value, f"{prefix}[{index}]"))
    return found


def readable_secret_files(config: Path, secrets_file: Path, domains: dict[str, Any]) -> list[ConfigIssue]:
    """Warnings for `secrets.yaml` and key files that the group or others may read (blocks: stat)."""
    candidates = [("", str(secrets_file)), *_key_files(domains)]
    warnings = []
    for where, name in candidates:
        file = Path(name) if Path(name).is_absolute() else config.parent / name
        try:
            mode = file.stat().st_mode
        except OSError:
            continue  # missing files are reported by the addon that needs them
        if mode & 0o077:
            warnings.append(ConfigIssue(where, f"{file} is readable by group or others (mode {mode & 0o777:o}); "
                                               f"run: chmod 600 {file}"))
    return warnings


def _secrets_in(node: Any) -> dict[str, str]:
    """Every `!secret` string in the loaded config, value -> name."""
    found: dict[str, str] = {}
    if isinstance(node, Secret):
        found[str(node)] = node.secret_name
    elif isinstance(node, dict):
        for value in node.values():
            found.update(_secrets_in(value))
    elif isinstance(node, list):
        for value in node:
            found.update(_secrets_in(value))
    return found


def _hide_secrets(issues: list[ConfigIssue], raw: Any) -> None:
    """A message that quotes a bad value must not show a secret: issues reach the log, API and every page."""
    found = sorted(_secrets_in(raw).items(), key=lambda item: len(item[0]), reverse=True)
    for issue in issues:
        for value, name in found:
            if value and value in issue.message:
                issue.message = issue.message.replace(value, f"<secret {name}>")


def data_dir_for(path: Path, dockmaster_conf: dict[str, Any]) -> Path:
    """The data directory: `dockmaster.data_dir`, or `.dockmaster` next to the config file."""
    configured = dockmaster_conf.get("data_dir")
    if configured:
        configured = Path(configured)
        return configured if configured.is_absolute() else (path.parent / configured)
    return path.parent / ".dockmaster"
