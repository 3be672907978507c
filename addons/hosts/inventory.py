"""Host inventory: OS, kernel, uptime, boot identity, disk, package manager, docker; osquery when present."""

from __future__ import annotations

import json
from typing import Any

from .reboot import BootIdentity
from .ssh import HostConnection

# One round trip, read-only, fixed text. Sections are separated by marker lines.
INVENTORY_SCRIPT = "; ".join([
    "echo '##os'", "cat /etc/os-release 2>/dev/null",
    "echo '##kernel'", "uname -r",
    "echo '##uptime'", "cat /proc/uptime",
    "echo '##disk'", "df -P -k / 2>/dev/null | tail -n 1",
    "echo '##docker'", "command -v docker 2>/dev/null && docker --version 2>/dev/null",
    "echo '##osquery'", "command -v osqueryi 2>/dev/null",
    "true",
])

OSQUERY_SQL = (
    "SELECT o.name, o.version, k.version AS kernel, u.total_seconds AS uptime "
    "FROM os_version o, kernel_info k, uptime u"
)


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("##"):
            current = line[2:].strip()
            sections[current] = []
        elif current:
            sections[current].append(line.rstrip())
    return sections


def parse_inventory(text: str) -> dict[str, Any]:
    """Turn the output of INVENTORY_SCRIPT into the inventory fields."""
    sections = _sections(text)
    release: dict[str, str] = {}
    for line in sections.get("os", []):
        key, sep, value = line.partition("=")
        if sep:
            release[key] = value.strip().strip('"')
    uptime = sections.get("uptime", ["0"])
    disk_fields = (sections.get("disk") or [""])[0].split()
    disk: dict[str, Any] = {}
    if len(disk_fields) >= 6:
        total, used = int(disk_fields[1]), int(disk_fields[2])
        disk = {"mount": disk_fields[5], "total_kb": total, "used_kb": used,
                "used_percent": round(100.0 * used / total, 1) if total else 0.0}
    docker_lines = [line for line in sections.get("docker", []) if line]
    return {
        "os": release.get("NAME", "unknown"),
        "os_version": release.get("VERSION_ID", release.get("BUILD_ID", "")),
        "os_pretty": release.get("PRETTY_NAME", ""),
        "kernel": (sections.get("kernel") or [""])[0],
        "uptime_seconds": float(uptime[0].split()[0]) if uptime and uptime[0] else 0.0,
        "disk": disk,
        "docker": bool(docker_lines),
        "docker_version": docker_lines[1] if len(docker_lines) > 1 else None,
        "osquery": bool([line for line in sections.get("osquery", []) if line]),
    }


def apply_osquery(inventory: dict[str, Any], text: str) -> None:
    """Prefer osquery's answers (`osqueryi --json`) for OS, version, kernel and uptime."""
    try:
        rows = json.loads(text)
    except ValueError:
        return
    if rows and isinstance(rows, list):
        row = rows[0]
        inventory.update(
            os=row.get("name", inventory["os"]), os_version=row.get("version", inventory["os_version"]),
            kernel=row.get("kernel", inventory["kernel"]),
            uptime_seconds=float(row.get("uptime", inventory["uptime_seconds"])), source="osquery",
        )


async def async_inventory(conn: HostConnection, package_manager: str, identity: BootIdentity) -> dict[str, Any]:
    """Collect the inventory of one host."""
    result = await conn.async_run(["sh", "-c", INVENTORY_SCRIPT], check=True)
    inventory = parse_inventory(result.stdout)
    inventory["source"] = "shell"
    if inventory["osquery"]:
        answer = await conn.async_run(["osqueryi", "--json", OSQUERY_SQL])
        if answer.exit_status == 0:
            apply_osquery(inventory, answer.stdout)
    inventory.update(package_manager=package_manager, boot_id=identity.boot_id, pid1_start=identity.pid1_start)
    return inventory


def compose_argv(path: str) -> list[str]:
    """Pull and bring up the compose project in `path` on the host (path passed as an argument)."""
    return ["sh", "-c", 'cd -- "$1" && docker compose pull && docker compose up -d', "sh", path]

