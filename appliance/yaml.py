"""The one YAML loader: `!secret`, `!include`, `!env_var`, and a file/line on every node."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECRETS_FILE = "secrets.yaml"


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a value was written: file (as given) and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        """Render as `file, line N`."""
        return f"{self.file}, line {self.line}"


@dataclass(slots=True)
class LoadIssue:
    """A problem found while reading YAML (not yet schema validation)."""

    message: str
    mark: Mark | None
    path: tuple[str | int, ...] = ()


class NodeDict(dict[Any, Any]):
    """A mapping that remembers where it and each of its keys were written."""

    mark: Mark | None = None
    key_marks: dict[Any, Mark]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create an empty mark table beside the mapping."""
        super().__init__(*args, **kwargs)
        self.key_marks = {}


class NodeList(list[Any]):
    """A sequence that remembers where it and each of its items were written."""

    mark: Mark | None = None
    item_marks: list[Mark | None]

    def __init__(self, *args: Any) -> None:
        """Create an empty mark table beside the list."""
        super().__init__(*args)
        self.item_marks = []


class NodeStr(str):
    """A string that remembers where it was written."""

    mark: Mark | None = None


class Secret(NodeStr):
    """A string that came from `secrets.yaml`; its repr never shows the value."""

    secret_name: str = ""

    def __repr__(self) -> str:
        """Hide the value."""
        return f"<secret {self.secret_name}>"


@dataclass
class _Context:
    """State shared by one load: the secrets, the include stack and the issues found."""

    root_dir: Path
    secrets_file: Path
    issues: list[LoadIssue] = field(default_factory=list)
    include_stack: list[Path] = field(default_factory=list)
    secrets: dict[str, Any] | None = None
    secrets_error: str | None = None

    def display(self, path: Path) -> str:
        """Show a file relative to the config folder when it is inside it."""
        try:
            return str(path.resolve().relative_to(self.root_dir.resolve()))
        except ValueError:
            return str(path)


def _mark(ctx: _Context, file: Path, node: yaml.Node) -> Mark:
    return Mark(ctx.display(file), node.start_mark.line + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds Node* containers and resolves the Dockmaster tags."""

    ctx: _Context
    file: Path

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> NodeDict:
        """Build a NodeDict keeping every key's line; report duplicate keys."""
        assert isinstance(node, yaml.MappingNode)
        self.flatten_mapping(node)
        result = NodeDict()
        result.mark = _mark(self.ctx, self.file, node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                self.ctx.issues.append(
                    LoadIssue("mapping key is not a plain value", _mark(self.ctx, self.file, key_node))
                )
                continue
            mark = _mark(self.ctx, self.file, key_node)
            if key in result:
                self.ctx.issues.append(LoadIssue(f"duplicate key '{key}'", mark))
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = mark
        return result

    def construct_sequence(self, node: yaml.Node, deep: bool = False) -> NodeList:
        """Build a NodeList keeping every item's line."""
        assert isinstance(node, yaml.SequenceNode)
        result = NodeList()
        result.mark = _mark(self.ctx, self.file, node)
        for child in node.value:
            result.append(self.construct_object(child, deep=True))
            result.item_marks.append(_mark(self.ctx, self.file, child))
        return result


def _construct_str(loader: _Loader, node: yaml.Node) -> NodeStr:
    value = NodeStr(loader.construct_scalar(node))  # type: ignore[arg-type]
    value.mark = _mark(loader.ctx, loader.file, node)
    return value


def _construct_map(loader: _Loader, node: yaml.Node) -> NodeDict:
    return loader.construct_mapping(node)


def _construct_seq(loader: _Loader, node: yaml.Node) -> NodeList:
    return loader.construct_sequence(node)


def _construct_secret(loader: _Loader, node: yaml.Node) -> Any:
    ctx = loader.ctx
    name = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    mark = _mark(ctx, loader.file, node)
    if ctx.secrets is None:
        ctx.secrets = _load_secrets(ctx)
    if name not in ctx.secrets:
        secrets_file = ctx.display(ctx.secrets_file)
        if ctx.secrets_error:
            message = f"secret '{name}' cannot be read: {secrets_file} {ctx.secrets_error}"
        else:
            message = f"secret '{name}' is not defined in {secrets_file}"
        ctx.issues.append(LoadIssue(message, mark))
        return _placeholder(mark)
    value = ctx.secrets[name]
    if isinstance(value, str):
        secret = Secret(value)
        secret.mark = mark
        secret.secret_name = name
        return secret
    return value


def _placeholder(mark: Mark) -> NodeStr:
    """Stand in for a value that could not be resolved; its problem is already reported."""
    value = NodeStr("")
    value.mark = mark
    return value


def _load_secrets(ctx: _Context) -> dict[str, Any]:
    """Read secrets.yaml once; when it is missing or broken, every `!secret` use says so where it is."""
    path = ctx.secrets_file
    if not path.is_file():
        ctx.secrets_error = "does not exist"
        return {}
    before = len(ctx.issues)
    data = _load_file(ctx, path, allow_tags=False)
    if len(ctx.issues) > before:
        ctx.secrets_error = "has errors"
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        ctx.issues.append(LoadIssue("secrets file must be a mapping of name: value", Mark(ctx.display(path), 1)))
        ctx.secrets_error = "has errors"
        return {}
    return dict(data)


def _construct_include(loader: _Loader, node: yaml.Node) -> Any:
    ctx = loader.ctx
    mark = _mark(ctx, loader.file, node)
    rel = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    target = (loader.file.parent / rel).resolve()
    if target in ctx.include_stack:
        chain = " -> ".join(ctx.display(p) for p in [*ctx.include_stack, target])
        ctx.issues.append(LoadIssue(f"!include loop: {chain}", mark))
        return _placeholder(mark)
    if not target.is_file():
        ctx.issues.append(LoadIssue(f"!include file not found: {rel}", mark))
        return _placeholder(mark)
    return _load_file(ctx, target)


def _construct_env_var(loader: _Loader, node: yaml.Node) -> Any:
    ctx = loader.ctx
    mark = _mark(ctx, loader.file, node)
    parts = str(loader.construct_scalar(node)).split(None, 1)  # type: ignore[arg-type]
    if not parts:
        ctx.issues.append(LoadIssue("!env_var needs a variable name", mark))
        return _placeholder(mark)
    name = parts[0]
    value = os.environ.get(name)
    if value is None:
        if len(parts) == 2:
            default = NodeStr(parts[1])  # written in the config itself: not a secret
            default.mark = mark
            return default
        ctx.issues.append(LoadIssue(f"environment variable {name} is not set and has no default", mark))
        return _placeholder(mark)
    # A value from the environment is redacted everywhere, like a `!secret` (tokens often arrive this way).
    secret = Secret(value)
    secret.mark = mark
    secret.secret_name = f"env:{name}"
    return secret


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_Loader.add_constructor("!secret", _construct_secret)
_Loader.add_constructor("!include", _construct_include)
_Loader.add_constructor("!env_var", _construct_env_var)


class _PlainLoader(_Loader):
    """Loader for secrets.yaml: no tags that read other files or secrets."""


_PlainLoader.yaml_constructors = dict(_Loader.yaml_constructors)
for _tag in ("!secret", "!include", "!env_var"):
    _PlainLoader.yaml_constructors.pop(_tag, None)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _load_file(ctx: _Context, path: Path, *, allow_tags: bool = True) -> Any:
    ctx.include_stack.append(path.resolve())
    try:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            ctx.issues.append(LoadIssue(f"cannot read file: {err}", Mark(ctx.display(path), 1)))
            return None
        loader_cls = _Loader if allow_tags else _PlainLoader
        try:
            loader = loader_cls(text)  # the reader refuses control characters right here
        except yaml.YAMLError as err:
            ctx.issues.append(LoadIssue(f"invalid YAML: {_first_line(err)}", Mark(ctx.display(path), 1)))
            return None
        loader.ctx = ctx
        loader.file = path
        try:
            return loader.get_single_data()
        except yaml.MarkedYAMLError as err:
            problem_mark = err.problem_mark or err.context_mark
            line = problem_mark.line + 1 if problem_mark else 1
            problem = err.problem or err.context or "invalid YAML"
            if err.context and err.problem and err.context_mark and err.context_mark.line + 1 != line:
                # "expected ']'" on line 2 is clearer with where the unclosed thing began.
                problem += f" ({err.context} started on line {err.context_mark.line + 1})"
            ctx.issues.append(LoadIssue(f"invalid YAML: {problem}", Mark(ctx.display(path), line)))
            return None
        except yaml.YAMLError as err:
            ctx.issues.append(LoadIssue(f"invalid YAML: {_first_line(err)}", Mark(ctx.display(path), 1)))
            return None
        finally:
            loader.dispose()
    finally:
        ctx.include_stack.pop()


def load_config_yaml(path: Path, *, secrets_file: Path | None = None) -> tuple[Any, list[LoadIssue]]:
    """Load a config file with its includes and secrets; blocks on file I/O (use an executor)."""
    path = Path(path)
    ctx = _Context(root_dir=path.parent, secrets_file=secrets_file or path.parent / SECRETS_FILE)
    if not path.is_file():
        return None, [LoadIssue(f"config file not found: {path}", None)]
    return _load_file(ctx, path), ctx.issues


def load_plain_yaml(text: str) -> Any:
    """Parse YAML from text without Dockmaster tags or marks (for data, not config)."""
    return yaml.safe_load(text)


def mark_of(value: Any) -> Mark | None:
    """Return the mark a loaded value carries, if any."""
    return getattr(value, "mark", None)


def locate(root: Any, path: tuple[Any, ...] | list[Any]) -> Mark | None:
    """Find the closest mark for a path of keys and indexes into loaded data."""
    best = mark_of(root)
    node = root
    for part in path:
        if isinstance(node, NodeDict):
            key = getattr(part, "schema", part)  # voluptuous wraps keys in Required/Optional
            if key in node.key_marks:
                best = node.key_marks[key]
                node = node[key]
                continue
            break
        if isinstance(node, NodeList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_marks[part] or best
            node = node[part]
            continue
        break
    return best


def strip_marks(value: Any) -> Any:
    """Turn Node* containers back into plain dicts, lists and strs (keeps Secret)."""
    if isinstance(value, dict):
        return {strip_marks(k): strip_marks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_marks(v) for v in value]
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return str(value)
    return value
