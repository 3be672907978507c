"""Rendering a stack folder: `*.j2` templates with Jinja2 (strict, sandboxed, confined) and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from appliance.errors import ValidationFailed

from .schema import COMPOSE_FILES, OVERRIDE_FILES

TEMPLATE_SUFFIX = ".j2"
# Files Dockmaster writes next to the rendered tree; they never count towards the content hash.
GENERATED_PREFIX = ".dockmaster"


class RenderError(ValidationFailed):
    """A stack folder cannot be rendered (bad template, missing value, unsafe path)."""


@dataclass
class Rendered:
    """A rendered stack folder: where it is, its compose files and the hash of its content."""

    root: Path
    compose_files: list[str]
    tree_hash: str
    templates: list[str]


def check_confined(root: Path) -> None:
    """Refuse a tree holding a symlink that leads outside it (blocks on file I/O)."""
    base = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            if path.is_symlink():
                target = path.resolve()
                if target != base and base not in target.parents:
                    rel = path.relative_to(root)
                    raise RenderError(f"{rel} is a symlink that leads outside the stack folder")


def _environment(root: Path) -> SandboxedEnvironment:
    # The loader only sees the exported stack folder: `{% include "../x" %}` cannot leave it.
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(root), followlinks=False),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def render_tree(root: Path, values: dict[str, Any]) -> list[str]:
    """Render every `*.j2` under `root` in place (output without `.j2`); blocks on file I/O."""
    env = _environment(root)
    rendered: list[str] = []
    templates = sorted(
        str(Path(dirpath, name).relative_to(root))
        for dirpath, _, filenames in os.walk(root)
        for name in filenames
        if name.endswith(TEMPLATE_SUFFIX)
    )
    for rel in templates:
        try:
            text = env.get_template(Path(rel).as_posix()).render(**values)
        except jinja2.UndefinedError as err:
            raise RenderError(f"template {rel}: {_undefined(err)} (define it under the stack's values)") from None
        except jinja2.TemplateNotFound as err:
            raise RenderError(
                f"template {rel} reads '{err.name}', which is not a file inside the stack folder"
            ) from None
        except jinja2.TemplateSyntaxError as err:
            raise RenderError(f"template {err.name or rel}, line {err.lineno}: {err.message}") from None
        except jinja2.exceptions.SecurityError as err:
            raise RenderError(f"template {rel}: refused by the sandbox: {err}") from None
        except jinja2.TemplateError as err:
            raise RenderError(f"template {rel}: {err}") from None
        out = root / rel[: -len(TEMPLATE_SUFFIX)]
        src = root / rel
        out.write_text(text, encoding="utf-8")
        os.chmod(out, src.stat().st_mode & 0o777)
        src.unlink()
        rendered.append(rel)
    return rendered


def _undefined(err: jinja2.UndefinedError) -> str:
    message = err.message or "a value is undefined"
    # Jinja says "'domain' is undefined"; name it as a value for the reader.
    return f"value {message}" if message.startswith("'") else message


def compose_files(root: Path) -> list[str]:
    """The compose file and its optional override, as Compose itself would pick them."""
    main = next((name for name in COMPOSE_FILES if (root / name).is_file()), None)
    if main is None:
        raise RenderError(f"no compose file found (expected one of {', '.join(COMPOSE_FILES)})")
    override = next((name for name in OVERRIDE_FILES if (root / name).is_file()), None)
    return [main, override] if override else [main]


def tree_hash(root: Path) -> str:
    """A sha256 over every file path, mode and content under `root` (blocks on file I/O)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel.startswith(GENERATED_PREFIX):
                continue
            digest.update(rel.encode() + b"\0")
            if path.is_symlink():
                digest.update(b"link:" + os.readlink(path).encode())
            else:
                digest.update(oct(path.stat().st_mode & 0o111).encode())
                digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def render(root: Path, values: dict[str, Any]) -> Rendered:
    """Check, render and hash an exported stack folder in place (blocks on file I/O)."""
    check_confined(root)
    templates = render_tree(root, values)
    files = compose_files(root)
    return Rendered(root, files, tree_hash(root), templates)


def inputs_hash(spec_values: dict[str, Any], env: dict[str, str], pull: str, sops: list[str]) -> str:
    """A hash of a stack's config inputs: when it changes, the stack is re-rendered and compared."""
    payload = json.dumps({"values": spec_values, "env": env, "pull": pull, "sops": sops},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def render_hash(tree: str, inputs: str, secrets_digest: str) -> str:
    """The hash recorded at deploy: rendered tree + config inputs + keyed digest of the secrets."""
    return hashlib.sha256(f"{tree}\0{inputs}\0{secrets_digest}".encode()).hexdigest()
