"""Builds the Debian SSH test image once (debootstrap minbase + `docker import`), cached by tag."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

from .repo import build_package

HOST_IMAGE = "dockmaster-test/debian-ssh:1"
SUITE = "bookworm"
PACKAGES = ["openssh-server", "sudo", "python3", "procps"]
TEST_USER = "dm"

# PID 1 of every test host: make a host key on first boot only (kept across restarts, as on a
# real machine), install the harness's authorized key, then become sshd.
_INIT = """#!/bin/sh
set -e
if [ ! -s /etc/ssh/ssh_host_ed25519_key ]; then
    ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
fi
install -d -m 700 -o dm -g dm /home/dm/.ssh
install -m 600 -o dm -g dm /harness/authorized_keys /home/dm/.ssh/authorized_keys
rm -f /harness/reboot-request
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
"""

# `reboot` asks the harness (outside) to restart the container: PID 1 starts again while
# /proc/sys/kernel/random/boot_id stays the same, exactly like an LXC container reboot.
_REBOOT = """#!/bin/sh
echo "$(date +%s) $*" > /harness/reboot-request
exit 0
"""

_SSHD_CONFIG = """HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
ClientAliveInterval 30
MaxStartups 100:30:200
Subsystem sftp internal-sftp
"""


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (from /etc/apt/sources.list(.d))."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        if not path.is_file() or path.name.endswith((".disabled", ".save")) or "disabled" in path.name:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            uri = match.group(1)
            if "security" not in uri and "/debian" in uri:
                return uri
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list(.d)")


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _customise(root: Path, work: Path) -> None:
    """Add the test user, sshd config, init and reboot scripts and dm-demo v1 to the rootfs."""
    _run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", TEST_USER])
    # '*' = no password but not locked: sshd (UsePAM no) refuses keys for a locked account.
    _run(["chroot", str(root), "usermod", "-p", "*", TEST_USER])
    (root / "etc/sudoers.d/dm").write_text(f"{TEST_USER} ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/sudoers.d/dm").chmod(0o440)
    (root / "etc/ssh/sshd_config").write_text(_SSHD_CONFIG)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    init = root / "usr/local/sbin/dm-init"
    init.write_text(_INIT)
    init.chmod(0o755)
    for name in ("usr/sbin/reboot", "usr/local/sbin/reboot"):
        target = root / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text(_REBOOT)
        target.chmod(0o755)
    (root / "harness").mkdir(exist_ok=True)
    (root / "repo").mkdir(exist_ok=True)
    # apt reads only the mounted local repository: it can never reach a network mirror.
    for source in (root / "etc/apt/sources.list.d").glob("*"):
        source.unlink()
    (root / "etc/apt/sources.list").write_text("deb [trusted=yes] file:/repo ./\n")
    (root / "etc/apt/apt.conf.d/99dockmaster-test").write_text(
        'Acquire::Languages "none";\nAPT::Install-Recommends "false";\n'
    )
    deb = build_package(work, version="1")
    shutil.copy(deb, root / "tmp/dm-demo.deb")
    _run(["chroot", str(root), "dpkg", "-i", "/tmp/dm-demo.deb"])
    (root / "tmp/dm-demo.deb").unlink()
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        folder = root / cache
        if folder.is_dir():
            for item in folder.iterdir():
                if item.is_file() and item.name != "lock":
                    item.unlink()


def ensure_host_image(client: docker.DockerClient | None = None) -> str:
    """Build `dockmaster-test/debian-ssh:1` unless the engine already has it (blocks minutes once)."""
    client = client or docker.from_env(timeout=300)
    try:
        client.images.get(HOST_IMAGE)
        return HOST_IMAGE
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap not found: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="dm-rootfs-") as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        _run([
            "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root),
            debian_mirror(),
        ])
        _customise(root, work)
        archive = work / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for item in sorted(root.iterdir()):
                if item.name not in ("proc", "sys", "dev"):
                    tar.add(str(item), arcname=item.name)
                else:
                    tar.add(str(item), arcname=item.name, recursive=False)
        _run([
            "docker", "import", "--change", 'CMD ["/usr/local/sbin/dm-init"]',
            "--change", "EXPOSE 22", str(archive), HOST_IMAGE,
        ])
    return HOST_IMAGE


if __name__ == "__main__":
    print(ensure_host_image())
