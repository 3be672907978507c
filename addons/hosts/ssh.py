"""SSH to fleet hosts with asyncssh: one verified connection per host, argv commands, sudo -n."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .const import HostConfig

if TYPE_CHECKING:
    import asyncssh

_LOGGER = logging.getLogger(__name__)


class HostError(Exception):
    """Something went wrong talking to a host; the message is shown to the user."""


class HostKeyError(HostError):
    """The host's key is unknown or changed: nothing is run on it."""


class HostUnreachable(HostError):
    """The host cannot be reached or refused the login."""


class CommandFailed(HostError):
    """A command exited non-zero."""

    def __init__(self, message: str, result: CommandResult) -> None:
        """Keep the result for callers that look at the output."""
        super().__init__(message)
        self.result = result


@dataclass
class CommandResult:
    """Exit status and output of one remote command."""

    argv: list[str]
    exit_status: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Stdout and stderr together, for parsers that look at both."""
        return f"{self.stdout}\n{self.stderr}" if self.stderr else self.stdout


def known_hosts_name(address: str, port: int) -> str:
    """The host pattern OpenSSH writes into known_hosts (`[addr]:port` off port 22)."""
    return address if port == 22 else f"[{address}]:{port}"


def command_line(argv: Sequence[str], *, become: bool, env: Mapping[str, str] | None = None) -> str:
    """Quote an argv list into one command line; `become` prefixes non-interactive `sudo -n`.

    With sudo, variables go to sudo itself (`sudo -n VAR=value -- cmd`): the rule that matches is
    the one for `cmd`, and it must carry SETENV. Through `env` sudo would check a rule for
    `/usr/bin/env`, which a command list cannot allow without allowing every command.
    """
    assignments = [f"{key}={value}" for key, value in (env or {}).items()]
    if become:
        return shlex.join(["sudo", "-n", *assignments, "--", *argv])
    return shlex.join(["env", *assignments, *argv] if assignments else list(argv))


@dataclass
class HostConnection:
    """One reusable SSH connection to a host; reconnects when it dropped."""

    conf: HostConfig
    known_hosts_path: Path
    _conn: asyncssh.SSHClientConnection | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def name(self) -> str:
        """The host's configured name."""
        return self.conf["name"]

    @property
    def become(self) -> bool:
        """True when commands that need root go through `sudo -n`."""
        return self.conf["become"] == "sudo" and self.conf["user"] != "root"

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._conn is not None and not self._conn.is_closed()

    def _read_known_hosts(self) -> asyncssh.SSHKnownHosts | None:
        """Parse known_hosts (blocks: file I/O)."""
        import asyncssh  # imported on first use: it costs ~14 MB of an idle process

        if not self.known_hosts_path.is_file():
            return None
        return asyncssh.read_known_hosts(str(self.known_hosts_path))

    def _record_key(self, pattern: str, key: asyncssh.SSHKey) -> None:
        """Append a newly accepted key to known_hosts (blocks: file I/O)."""
        self.known_hosts_path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
        with self.known_hosts_path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    async def async_connect(self) -> asyncssh.SSHClientConnection:
        """Open the connection (or return the open one); the host key is verified every time."""
        import asyncssh

        from .hostkeys import KeyCheck, KeyCheckClient

        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            loop = asyncio.get_running_loop()
            conf = self.conf
            timeouts = conf["timeouts"]
            known = await loop.run_in_executor(None, self._read_known_hosts)
            pattern = known_hosts_name(conf["address"], conf["port"])
            check = KeyCheck(known, pattern, conf["host_key_check"] == "accept-new")
            options: dict[str, Any] = {
                "port": conf["port"], "username": conf["user"],
                # An empty list still routes every key asyncssh cannot trust to our callback.
                "known_hosts": known if known is not None else ([], [], []),
                "client_factory": lambda: KeyCheckClient(check),
                "connect_timeout": timeouts["connect"].total_seconds(),
                "login_timeout": timeouts["connect"].total_seconds(),
                "keepalive_interval": timeouts["keepalive"].total_seconds(),
                "keepalive_count_max": 3,
                "agent_path": None,
                "config": [],
            }
            if conf.get("ssh_key"):
                options["client_keys"] = [str(conf["ssh_key"])]
            try:
                self._conn = await asyncssh.connect(conf["address"], **options)
            except asyncssh.HostKeyNotVerifiable as err:
                raise HostKeyError(check.problem or f"host key for {pattern} not verified: {err}") from None
            except asyncssh.PermissionDenied:
                raise HostUnreachable(
                    f"{conf['user']}@{pattern} refused the login (check user and ssh_key)"
                ) from None
            except (OSError, asyncssh.Error, TimeoutError) as err:
                raise HostUnreachable(f"cannot connect to {pattern}: {err or type(err).__name__}") from None
            if check.new_key is not None:
                await loop.run_in_executor(None, self._record_key, pattern, check.new_key)
                _LOGGER.warning("Recorded new host key for %s in %s", pattern, self.known_hosts_path)
            return self._conn

    async def async_run(
        self,
        argv: Sequence[str],
        *,
        become: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-command limit passed to the remote run
        check: bool = False,
    ) -> CommandResult:
        """Run one argv command (never a shell string from config); `become` uses `sudo -n`."""
        import asyncssh

        conn = await self.async_connect()
        line = command_line(argv, become=become and self.become, env=env)
        limit = timeout if timeout is not None else self.conf["timeouts"]["command"].total_seconds()
        try:
            async with asyncio.timeout(limit):
                completed = await conn.run(line, check=False)
        except TimeoutError:
            raise HostError(f"{self.name}: '{shlex.join(argv)}' timed out after {limit:.0f}s") from None
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as err:
            self._conn = None
            raise HostUnreachable(f"{self.name}: connection lost during '{shlex.join(argv)}': {err}") from None
        status = completed.exit_status if completed.exit_status is not None else 255
        result = CommandResult(list(argv), status, _text(completed.stdout), _text(completed.stderr))
        if become and self.become and status == 1 and "sudo: a password is required" in result.stderr:
            raise HostError(
                f"{self.name}: sudo needs a password for {self.conf['user']}; allow passwordless sudo "
                "(NOPASSWD) for it or connect as root"
            )
        if check and status != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise CommandFailed(
                f"{self.name}: '{shlex.join(argv)}' exited {status}: {' / '.join(tail)}", result
            )
        return result

    async def async_wait_closed(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounded wait
        """Wait until the connection drops (a reboot); False when it stayed up for `timeout` s."""
        conn = self._conn
        if conn is None or conn.is_closed():
            self._conn = None
            return True
        try:
            async with asyncio.timeout(timeout):
                await conn.wait_closed()
        except TimeoutError:
            return False
        self._conn = None
        return True

    async def async_close(self) -> None:
        """Close the connection if open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
