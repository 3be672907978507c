"""Fixtures for the appliance image: the Dockerfile's parsed instructions and an offline-buildable base."""

from __future__ import annotations

import contextlib
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "image" / "Dockerfile"
# A Debian root filesystem with what the Dockerfile's stages expect from their base image, so the
# real Dockerfile builds with networking off (no base image can be pulled here).
BASE_IMAGE = "dockmaster-test/debian-python:1"
BASE_PACKAGES = ["python3", "python3-venv", "git", "openssh-client", "ca-certificates", "tini", "tzdata"]


@dataclass
class Instruction:
    """One Dockerfile instruction with its line number."""

    keyword: str
    args: str
    line: int


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions of a Dockerfile, continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
    return result


def copy_sources(instruction: Instruction) -> list[str]:
    """The source paths of a COPY without --from (flags and the destination dropped)."""
    words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
    return words[:-1]


@pytest.fixture(scope="session")
def dockerfile() -> list[Instruction]:
    """The parsed image/Dockerfile."""
    return parse_dockerfile()


def _build_base_image() -> None:
    """Debootstrap the base rootfs and `docker import` it (blocks about a minute, once per engine)."""
    from tests.support.hosts.image import debian_mirror

    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap not found: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="dm-image-base-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm",
             str(root), debian_mirror()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for item in sorted(root.iterdir()):
                tar.add(str(item), arcname=item.name, recursive=item.name not in ("proc", "sys", "dev"))
        subprocess.run(["docker", "import", str(archive), BASE_IMAGE], check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def image_base(docker_client: Any) -> str:
    """The local stand-in for the official Python base image (cached by the engine)."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        _build_base_image()
    return BASE_IMAGE


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build context: the repository files the Dockerfile copies plus a wheelhouse under image/."""
    context = tmp_path_factory.mktemp("image-context")
    for instruction in parse_dockerfile():
        if instruction.keyword != "COPY" or "--from=" in instruction.args:
            continue
        for source in copy_sources(instruction):
            src = REPO / source
            dest = context / source
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "wheelhouse"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
    wheelhouse = context / "image" / "wheelhouse"
    # The project's dependencies and its build backend as wheels, fetched on the host (pip caches them).
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheelhouse),
         "-c", str(REPO / "image" / "constraints.txt"), str(REPO), "setuptools>=68", "wheel"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    (wheelhouse / next(wheelhouse.glob("dockmaster-*.whl")).name).unlink()  # built inside the image
    return context


@pytest.fixture(scope="session")
def appliance_image(docker_client: Any, image_base: str, build_context: Path) -> Any:
    """Build the appliance image from the real Dockerfile with networking off; removed afterwards."""
    tag = f"dockmaster-test/appliance-{secrets.token_hex(4)}:1"
    image, _logs = docker_client.images.build(
        path=str(build_context), dockerfile="image/Dockerfile", tag=tag, network_mode="none",
        buildargs={"BASE_IMAGE": image_base, "PIP_OPTIONS": "--no-index --find-links=/src/image/wheelhouse"},
        rm=True, forcerm=True, pull=False,
    )
    yield image
    docker_client.images.remove(image.id, force=True)
    # The builder stage's image stays behind untagged: remove ours (labelled in the Dockerfile).
    for leftover in docker_client.images.list(filters={"dangling": True, "label": "io.dockmaster.stage=build"}):
        # One still in use by a concurrent build is left to that build.
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(leftover.id)
