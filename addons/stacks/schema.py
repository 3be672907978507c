"""The `stacks:` config block: explicit stacks, `discover` entries and one optional `settings` entry."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from appliance import cv

from .policy import SETTINGS_POLICY_SCHEMA, STACK_POLICY_SCHEMA

PULL_POLICIES = ("missing", "always", "never")
MODES = ("compose", "swarm")  # `docker compose up`, or a Swarm stack on a swarm manager engine
ON_REMOVE = ("keep", "down")  # a stack gone from git or the config: keep it running (orphaned), or take it down
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")


def _env_name(value: Any) -> str:
    text = cv.string(value)
    if not text.replace("_", "a").isalnum() or text[0].isdigit():
        raise vol.Invalid(f"invalid environment variable name '{text}'")
    return text


def _values(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid("values must be a mapping of names to values")
    for key in value:
        if not isinstance(key, str):
            raise vol.Invalid(f"value names must be strings, got {key!r}")
    return value


def _sops_file(value: Any) -> str:
    path = cv.relative_path(value)
    if path == ".":
        raise vol.Invalid("a sops entry must name a file inside the stack folder")
    return path


# Keys a stack shares with `discover` defaults (defaults live only here).
_COMMON: dict[Any, Any] = {
    vol.Optional("auto_deploy", default=True): cv.boolean,
    vol.Optional("values", default={}): _values,
    vol.Optional("env", default={}): {_env_name: cv.string},
    vol.Optional("sops", default=[]): cv.ensure_list_of(_sops_file),
    vol.Optional("health_timeout", default="120s"): cv.positive_duration,
    vol.Optional("rollback", default=True): cv.boolean,
    vol.Optional("window"): cv.slug,
    vol.Optional("pull", default="missing"): cv.one_of(*PULL_POLICIES),
    vol.Optional("on_remove", default="keep"): cv.one_of(*ON_REMOVE),
    vol.Optional("adopt", default=False): cv.boolean,
    vol.Optional("policy"): STACK_POLICY_SCHEMA,  # baseline | privileged | {level, allow: [rule, ...]}
    vol.Optional("engine", default="local"): cv.slug,  # a name from engines: (checked at setup)
    vol.Optional("mode", default="compose"): cv.one_of(*MODES),
}

STACK_SCHEMA = vol.Schema(
    {
        vol.Required("name"): cv.slug,
        vol.Required("repo"): cv.slug,
        vol.Required("path"): cv.relative_path,
        **_COMMON,
    }
)


def _glob(value: Any) -> str:
    text = cv.relative_path(value)
    if "*" not in text and "?" not in text and "[" not in text:
        raise vol.Invalid(f"discover path must be a glob such as 'stacks/*', got '{text}'")
    return text


DISCOVER_SCHEMA = vol.Schema(
    {
        vol.Required("repo"): cv.slug,
        vol.Optional("path", default="stacks/*"): _glob,
        vol.Optional("exclude", default=[]): cv.ensure_list_of(cv.slug),
        **_COMMON,
    }
)

SETTINGS_SCHEMA = vol.Schema(
    {
        vol.Optional("sops_age_key_file"): cv.path,
        vol.Optional("drift_check", default="*/5 * * * *"): cv.cron,
        vol.Optional("keep_snapshots", default=5): cv.positive_int,
        vol.Optional("max_parallel", default=4): cv.positive_int,
        # For stacks that left the config (their own on_remove went with them).
        vol.Optional("on_remove", default="keep"): cv.one_of(*ON_REMOVE),
        vol.Optional("policy", default={}): SETTINGS_POLICY_SCHEMA,  # every stack's default deploy policy
    }
)


def _entry(item: Any) -> dict[str, Any]:
    """One list item: a stack, `{discover: {...}}` or `{settings: {...}}`."""
    if not isinstance(item, dict):
        raise vol.Invalid("expected a stack (name, repo, path), a 'discover' or a 'settings' entry")
    if "discover" in item:
        if len(item) != 1:
            raise vol.Invalid("a 'discover' entry holds only the 'discover' key (put defaults inside it)")
        return {"discover": vol.Schema({vol.Required("discover"): DISCOVER_SCHEMA})(item)["discover"]}
    if "settings" in item:
        if len(item) != 1:
            raise vol.Invalid("a 'settings' entry holds only the 'settings' key")
        return {"settings": vol.Schema({vol.Required("settings"): SETTINGS_SCHEMA})(item)["settings"]}
    result: dict[str, Any] = STACK_SCHEMA(item)
    return result


def _validate(value: Any) -> dict[str, Any]:
    """Split the list into stacks, discover entries and settings, checking names and paths."""
    items = cv.ensure_list(value)
    errors: list[vol.Invalid] = []
    stacks: list[dict[str, Any]] = []
    discover: list[dict[str, Any]] = []
    settings: dict[str, Any] | None = None
    for index, item in enumerate(items):
        try:
            entry = _entry(item)
        except vol.MultipleInvalid as err:
            errors.extend(vol.Invalid(e.msg, path=[index, *e.path]) for e in err.errors)
            continue
        except vol.Invalid as err:
            errors.append(vol.Invalid(err.msg, path=[index, *err.path]))
            continue
        if "discover" in entry:
            discover.append(entry["discover"])
        elif "settings" in entry:
            if settings is not None:
                errors.append(vol.Invalid("only one 'settings' entry is allowed", path=[index, "settings"]))
            settings = entry["settings"]
        else:
            stacks.append({**entry, "_index": index})
    seen: dict[str, int] = {}
    for stack in stacks:
        if stack["name"] in seen:
            errors.append(vol.Invalid(f"duplicate stack name '{stack['name']}'", path=[stack["_index"], "name"]))
        seen[stack["name"]] = stack["_index"]
    if errors:
        raise vol.MultipleInvalid(errors)
    for stack in stacks:
        del stack["_index"]
    return {"stacks": stacks, "discover": discover, "settings": settings or SETTINGS_SCHEMA({})}


# `_validate` sorts the items and locates errors by list index; the second schema states the shape it
# returns (the same validators again, which accept their own output) so the keys are inspectable.
CONFIG_SCHEMA = vol.Schema(vol.All(_validate, vol.Schema({
    "stacks": [STACK_SCHEMA], "discover": [DISCOVER_SCHEMA], "settings": SETTINGS_SCHEMA,
})))
