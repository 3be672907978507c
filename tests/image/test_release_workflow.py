"""The release workflow builds both platforms and pushes the image the Unraid template and compose file name."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import yaml

from tests.image.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def _workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = data["jobs"].values()
    return list(job["steps"])


def _uses(steps: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [s for s in steps if str(s.get("uses", "")).split("@")[0] == action]
    assert len(found) == 1, f"{action}: {len(found)} steps"
    return found[0]


def _expand(value: str, env: dict[str, str]) -> str:
    for key, text in env.items():
        value = value.replace("${{ env." + key + " }}", text)
    return value


def _without_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    return name if name and "/" not in tag else image


def test_runs_on_version_tags_only() -> None:
    trigger = _workflow()["on"]
    assert list(trigger) == ["push"]
    assert list(trigger["push"]) == ["tags"]
    assert all(pattern.startswith("v") for pattern in trigger["push"]["tags"])


def test_builds_amd64_and_arm64_with_qemu_and_buildx() -> None:
    data = _workflow()
    steps = _steps(data)
    build = _uses(steps, "docker/build-push-action")["with"]
    platforms = _expand(str(build["platforms"]), data["env"]).split(",")
    assert sorted(platforms) == ["linux/amd64", "linux/arm64"]
    assert build["file"] == "image/Dockerfile" and build["context"] == "."
    assert (REPO / build["file"]).is_file()
    assert build["push"] is True
    assert "arm64" in _uses(steps, "docker/setup-qemu-action")["with"]["platforms"]
    # QEMU and buildx are set up, and the arm64 wheel check passes, before the build.
    at = {str(s.get("uses", "")).split("@")[0]: i for i, s in enumerate(steps)}
    assert at["docker/setup-qemu-action"] < at["docker/build-push-action"]
    assert at["docker/setup-buildx-action"] < at["docker/build-push-action"]
    checks = [i for i, s in enumerate(steps) if "image/check_wheels.py --arch aarch64" in str(s.get("run", ""))]
    assert checks and checks[0] < at["docker/build-push-action"]


def test_pushes_the_image_the_template_and_compose_file_name() -> None:
    data = _workflow()
    steps = _steps(data)
    pushed = _expand(str(_uses(steps, "docker/metadata-action")["with"]["images"]), data["env"])
    template = ET.parse(REPO / "image" / "unraid" / "dockmaster.xml").getroot().findtext("Repository") or ""
    compose = yaml.safe_load((REPO / "image" / "compose.yaml").read_text())["services"]["dockmaster"]["image"]
    assert pushed == _without_tag(template) == _without_tag(compose), (pushed, template, compose)
    # The login goes to that image's registry.
    registry = _expand(str(_uses(steps, "docker/login-action")["with"]["registry"]), data["env"])
    assert pushed.split("/")[0] == registry
    # The template's tag is one the workflow pushes.
    assert template.rpartition(":")[2] == "latest"
    assert "value=latest" in _uses(steps, "docker/metadata-action")["with"]["tags"]
    assert data["permissions"]["packages"] == "write"


def test_version_tags_and_oci_labels() -> None:
    data = _workflow()
    steps = _steps(data)
    meta = _uses(steps, "docker/metadata-action")
    tags = meta["with"]["tags"]
    assert "type=semver,pattern={{version}}" in tags and "type=semver,pattern={{major}}.{{minor}}" in tags
    labels = dict(line.split("=", 1) for line in meta["with"]["labels"].strip().splitlines())
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.description",
                "org.opencontainers.image.licenses"):
        assert labels.get(key), key
    build = _uses(steps, "docker/build-push-action")["with"]
    output = "${{ steps." + meta["id"] + ".outputs."
    assert build["tags"] == output + "tags }}"
    assert build["labels"] == output + "labels }}"
    # The licence label matches the package's.
    assert f'license = "{labels["org.opencontainers.image.licenses"]}"' in (REPO / "pyproject.toml").read_text()
