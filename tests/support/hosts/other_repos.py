"""Local rpm (createrepo_c) and pacman (repo-add) repositories of `dm-demo` 1 and 2 for the dnf and pacman hosts."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from .repo import PACKAGE

PACMAN_REPO = "dmtest"

_SPEC = """Name: dm-demo
Version: {version}
Release: 1
Summary: Dockmaster test package, version {version}
License: MIT
BuildArch: noarch

%description
A tiny package the host update tests upgrade from version 1 to 2.

%install
mkdir -p %{{buildroot}}/usr/share/dm-demo
echo {version} > %{{buildroot}}/usr/share/dm-demo/VERSION

%files
/usr/share/dm-demo/VERSION
"""


def _run(argv: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-800:]}")


def build_rpm(work: Path, *, version: str) -> Path:
    """Build `dm-demo-<version>-1.noarch.rpm` with Debian's rpmbuild (blocks) and return its path."""
    top = work / f"rpmbuild-{version}"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS/dm-demo.spec"
    spec.write_text(_SPEC.format(version=version))
    _run(["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}", "--define", "_build_id_links none",
          "--define", f"_dbpath {top}/rpmdb", str(spec)])
    [rpm] = (top / "RPMS/noarch").glob("*.rpm")
    return rpm


def build_rpm_repo(folder: Path) -> Path:
    """A dnf repository (`baseurl=file:///repo`) with dm-demo 1 and 2, indexed by createrepo_c (blocks)."""
    folder.mkdir(parents=True, exist_ok=True)
    for version in ("1", "2"):
        rpm = build_rpm(folder / ".build", version=version)
        rpm.rename(folder / rpm.name)
    shutil.rmtree(folder / ".build")
    _run(["createrepo_c", "--quiet", str(folder)])
    _open_up(folder)
    return folder


def build_pacman_package(work: Path, *, version: str) -> Path:
    """Build `dm-demo-<version>-1-any.pkg.tar.xz` (.PKGINFO first, as makepkg writes it) and return its path."""
    work.mkdir(parents=True, exist_ok=True)
    content = f"{version}\n".encode()
    info = "\n".join([
        f"pkgname = {PACKAGE}", f"pkgbase = {PACKAGE}", f"pkgver = {version}-1",
        f"pkgdesc = Dockmaster test package, version {version}", f"builddate = {int(time.time())}",
        "packager = Dockmaster tests <tests@dockmaster.invalid>", f"size = {len(content)}", "arch = any",
        "license = MIT", "",
    ]).encode()
    out = work / f"{PACKAGE}-{version}-1-any.pkg.tar.xz"
    with tarfile.open(out, "w:xz") as tar:
        for name, data, mode in ((".PKGINFO", info, 0o644), ("usr/share/dm-demo/VERSION", content, 0o644)):
            for parent in _parents(name):
                entry = tarfile.TarInfo(parent)
                entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                if parent not in tar.getnames():
                    tar.addfile(entry)
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode, entry.mtime = len(data), mode, int(time.time())
            tar.addfile(entry, io.BytesIO(data))
    return out


def _parents(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def build_pacman_repo(folder: Path) -> Path:
    """A pacman repository `[dmtest]` (`Server = file:///repo`) with dm-demo 1 and 2, made by repo-add (blocks)."""
    folder.mkdir(parents=True, exist_ok=True)
    packages = [build_pacman_package(folder, version=version) for version in ("1", "2")]
    # The database lists one version per package: the newest, as on an Arch mirror.
    _run(["repo-add", "--quiet", str(folder / f"{PACMAN_REPO}.db.tar.gz"), str(packages[-1])])
    _open_up(folder)
    return folder


def _open_up(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
