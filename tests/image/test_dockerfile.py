"""The Dockerfile, its entrypoint and the Unraid template hold together (checked without building)."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.image.conftest import REPO, Instruction, copy_sources

TEMPLATE = REPO / "image" / "unraid" / "dockmaster.xml"


def _all(dockerfile: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in dockerfile if i.keyword == keyword]


def test_every_copy_source_exists(dockerfile: list[Instruction]) -> None:
    copies = [i for i in _all(dockerfile, "COPY") if "--from=" not in i.args]
    assert copies
    missing = [f"line {i.line}: {src}" for i in copies for src in copy_sources(i) if not (REPO / src).exists()]
    assert not missing, missing


def test_stages_and_runtime_contract(dockerfile: list[Instruction]) -> None:
    froms = _all(dockerfile, "FROM")
    assert len(froms) == 2 and froms[0].args.endswith("AS build")
    # The runtime stage copies the venv the build stage made, and only that.
    assert any(i.args.startswith("--from=build /opt/dockmaster ") for i in _all(dockerfile, "COPY"))
    assert [i.args for i in _all(dockerfile, "EXPOSE")] == ["8099"]
    assert [i.args for i in _all(dockerfile, "VOLUME")] == ["/config"]
    (health,) = _all(dockerfile, "HEALTHCHECK")
    assert "/api/health" in health.args and "urllib" in health.args and "curl" not in health.args
    (entry,) = _all(dockerfile, "ENTRYPOINT")
    assert "/usr/local/bin/dockmaster-entrypoint" in entry.args
    assert any("image/entrypoint.sh /usr/local/bin/dockmaster-entrypoint" in i.args for i in _all(dockerfile, "COPY"))
    env = " ".join(i.args for i in _all(dockerfile, "ENV"))
    assert "DOCKMASTER_CONFIG=/config/config.yaml" in env


def test_entrypoint_is_an_executable_posix_script() -> None:
    script = REPO / "image" / "entrypoint.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    # It checks the config before it serves, and serves with exec (signals reach the process).
    assert text.index("dockmaster check-config") < text.index('exec dockmaster run -c "$CONFIG"')


def test_unraid_template_maps_port_config_socket_and_tz() -> None:
    root = ET.parse(TEMPLATE).getroot()
    assert root.tag == "Container"
    for tag in ("Name", "Repository", "Registry", "Network", "WebUI", "Icon", "Overview", "Category"):
        assert (root.findtext(tag) or "").strip(), tag
    assert root.findtext("Network") == "bridge"
    assert root.findtext("WebUI") == "http://[IP]:[PORT:8099]/"
    configs = {c.get("Target"): c for c in root.findall("Config")}
    assert configs["8099"].get("Type") == "Port"
    # SQLite stays off the /mnt/user FUSE share: the default is a pool path.
    assert configs["/config"].get("Default") == "/mnt/cache/appdata/dockmaster"
    assert configs["/config"].text == "/mnt/cache/appdata/dockmaster"
    assert configs["/var/run/docker.sock"].get("Type") == "Path"
    for variable in ("TZ", "PUID", "PGID", "UMASK"):
        assert configs[variable].get("Type") == "Variable", variable
    assert configs["UMASK"].get("Default") == "077"
    # /dev/shm as a path would bind a folder of the array, not a tmpfs: the size goes in ExtraParams.
    assert "/dev/shm" not in configs
    extra = (root.findtext("ExtraParams") or "").split()
    assert any(re.fullmatch(r"--shm-size=\d+[mg]", p) for p in extra), extra
    assert "--stop-timeout=30" in extra
    # The icon the template names ships in this repository.
    icon = re.search(r"/main/(.+)$", root.findtext("Icon") or "")
    assert icon and (REPO / icon.group(1)).read_bytes().startswith(b"\x89PNG")


def test_docs_name_every_config_entry_of_the_template() -> None:
    install = (REPO / "docs" / "install.md").read_text()
    for target in ("8099", "/config", "/var/run/docker.sock", "--shm-size", "TZ", "PUID", "PGID", "UMASK",
                   "net.unraid.docker.icon", "net.unraid.docker.webui", "image/compose.yaml"):
        assert target in install, target
    assert Path(REPO / "image" / "unraid" / "dockmaster.xml").name in install


def test_compose_file_for_plain_docker(compose_argv: list[str], tmp_path: Path) -> None:
    import yaml

    path = REPO / "image" / "compose.yaml"
    service = yaml.safe_load(path.read_text())["services"]["dockmaster"]
    root = ET.parse(TEMPLATE).getroot()
    assert service["image"] == root.findtext("Repository")  # the same image as the Unraid template
    assert service["ports"] == ["8099:8099"]
    assert {v.split(":")[1] for v in service["volumes"]} == {"/config", "/var/run/docker.sock"}
    assert set(service["environment"]) == {"TZ", "PUID", "PGID", "UMASK"}
    assert service["shm_size"] and service["stop_grace_period"] == "30s"
    # Compose itself accepts it.
    result = subprocess.run([*compose_argv, "-f", str(path), "--project-directory", str(tmp_path), "config", "-q"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
