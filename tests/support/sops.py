"""SOPS files for tests: an age identity written like a key file, and dotenv text encrypted to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyrage

SOPS = str(Path(sys.executable).parent / "sops")


def age_key(path: Path) -> str:
    """Write a new age identity to `path` (0600) and return its public recipient."""
    identity = pyrage.x25519.Identity.generate()
    path.write_text(f"{identity}\n")
    path.chmod(0o600)
    return str(identity.to_public())


def encrypt_dotenv(tmp: Path, recipient: str, text: str) -> str:
    """`text` (dotenv) encrypted by the real sops binary for `recipient` (blocks)."""
    plain = tmp / "plain.env"
    plain.write_text(text)
    out = subprocess.run(
        [SOPS, "--disable-version-check", "encrypt", "--age", recipient, "--input-type", "dotenv",
         "--output-type", "dotenv", str(plain)], check=True, capture_output=True, text=True).stdout
    plain.unlink()
    return out
