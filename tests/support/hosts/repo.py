"""Builds the local apt repository of the test hosts: package `dm-demo` versions 1 and 2."""

from __future__ import annotations

import gzip
import lzma
import subprocess
from pathlib import Path

PACKAGE = "dm-demo"

_CONTROL = """Package: dm-demo
Version: {version}
Architecture: all
Maintainer: Dockmaster tests <tests@dockmaster.invalid>
Section: misc
Priority: optional
Description: Dockmaster test package, version {version}
 A tiny package whose upgrade asks for a reboot, used by the host update tests.
"""

# Version 2 asks for a reboot the way Debian packages do (linux-image, libc6 ...).
_POSTINST_V2 = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    touch /var/run/reboot-required
    echo dm-demo >> /var/run/reboot-required.pkgs
fi
exit 0
"""

# A broken upgrade: dpkg leaves the package half-configured and apt fails, as a real bad update would.
_POSTINST_BROKEN = """#!/bin/sh
echo "dm-demo: configuration failed on purpose" >&2
exit 1
"""


def build_package(work: Path, *, version: str, broken: bool = False) -> Path:
    """Build `dm-demo_<version>_all.deb` with `dpkg-deb --build` (blocks) and return its path."""
    tree = work / f"pkg-{version}{'-broken' if broken else ''}"
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "usr/share/dm-demo").mkdir(parents=True, exist_ok=True)
    (tree / "DEBIAN/control").write_text(_CONTROL.format(version=version))
    (tree / "usr/share/dm-demo/VERSION").write_text(f"{version}\n")
    if version != "1":
        postinst = tree / "DEBIAN/postinst"
        postinst.write_text(_POSTINST_BROKEN if broken else _POSTINST_V2)
        postinst.chmod(0o755)
    out = work / f"{PACKAGE}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def build_repo(folder: Path, *, broken: bool = False) -> Path:
    """A flat apt repository (`deb [trusted=yes] file:/repo ./`) with dm-demo 1 and 2 (blocks)."""
    folder.mkdir(parents=True, exist_ok=True)
    build_package(folder / ".build", version="1")
    build_package(folder / ".build", version="2", broken=broken)
    for deb in (folder / ".build").glob("*.deb"):
        deb.rename(folder / deb.name)
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."], cwd=folder, check=True, capture_output=True, text=True
    ).stdout
    (folder / "Packages").write_text(packages)
    # apt asks for the compressed indexes first; offering them keeps `apt-get update` quiet.
    (folder / "Packages.xz").write_bytes(lzma.compress(packages.encode()))
    (folder / "Packages.gz").write_bytes(gzip.compress(packages.encode()))
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder
