"""Builds the Debian SSH test images once (debootstrap minbase + `docker import`), cached by tag.

Three flavours share one recipe: `apt` (Debian as it is), and `dnf` and `pacman`, where Debian's
own builds of those package managers stand in for a Fedora or Arch host: apt-get is removed so
detection finds them, and their only repository is the local one mounted at /repo.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

from .other_repos import build_pacman_package, build_rpm
from .repo import build_package

HOST_IMAGE = "dockmaster-test/debian-ssh:1"
SUITE = "bookworm"
PACKAGES = ["openssh-server", "sudo", "python3", "procps"]
# Image tag and extra Debian packages per package manager.
FLAVOURS: dict[str, tuple[str, list[str]]] = {
    "apt": (HOST_IMAGE, []),
    "dnf": ("dockmaster-test/dnf-ssh:1", ["dnf", "dnf-plugins-core", "rpm"]),
    "pacman": ("dockmaster-test/pacman-ssh:1", ["pacman-package-manager"]),
}

_DNF_CONF = """[main]
gpgcheck=0
installonly_limit=3
clean_requirements_on_remove=True
best=False
skip_if_unavailable=False
"""
_DNF_REPO = """[dmtest]
name=Dockmaster test repository
baseurl=file:///repo
enabled=1
gpgcheck=0
repo_gpgcheck=0
metadata_expire=0
"""
_PACMAN_CONF = """[options]
Architecture = auto
SigLevel = Never
LocalFileSigLevel = Never
HoldPkg = pacman

[dmtest]
Server = file:///repo
"""
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


def _customise(root: Path, work: Path, flavour: str = "apt") -> None:
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
    if flavour == "dnf":
        _customise_dnf(root, work)
    elif flavour == "pacman":
        _customise_pacman(root, work)
    else:
        _customise_apt(root, work)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        folder = root / cache
        if folder.is_dir():
            for item in folder.iterdir():
                if item.is_file() and item.name != "lock":
                    item.unlink()


def _customise_apt(root: Path, work: Path) -> None:
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


def _hide_apt(root: Path) -> None:
    """Remove apt's commands: the host stands in for one whose package manager is dnf or pacman."""
    for name in ("usr/bin/apt-get", "usr/bin/apt", "usr/bin/apt-cache"):
        (root / name).unlink(missing_ok=True)


def _customise_dnf(root: Path, work: Path) -> None:
    (root / "etc/dnf").mkdir(parents=True, exist_ok=True)
    (root / "etc/dnf/dnf.conf").write_text(_DNF_CONF)
    repos = root / "etc/yum.repos.d"
    repos.mkdir(parents=True, exist_ok=True)
    for old in repos.glob("*"):
        old.unlink()
    (repos / "dmtest.repo").write_text(_DNF_REPO)
    # Debian's rpm keeps a database per user (~/.rpmdb); Fedora's has one for the system, which every
    # user reads (Dockmaster's `rpm -q` runs without sudo). Set it the Fedora way.
    (root / "etc/rpm").mkdir(parents=True, exist_ok=True)
    (root / "etc/rpm/macros.dbpath").write_text("%_dbpath /var/lib/rpm\n")
    rpm = build_rpm(work / "rpm", version="1")
    shutil.copy(rpm, root / "tmp/dm-demo.rpm")
    # Debian's rpm database starts empty; dm-demo 1 is its first package (no dependencies to resolve).
    _run(["chroot", str(root), "rpm", "-i", "--nodeps", "/tmp/dm-demo.rpm"])
    (root / "tmp/dm-demo.rpm").unlink()
    _hide_apt(root)


def _customise_pacman(root: Path, work: Path) -> None:
    (root / "etc/pacman.conf").write_text(_PACMAN_CONF)
    for folder in ("var/lib/pacman/local", "var/lib/pacman/sync", "var/cache/pacman/pkg"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    package = build_pacman_package(work / "pacman", version="1")
    shutil.copy(package, root / "tmp" / package.name)
    _run(["chroot", str(root), "pacman", "-U", "--noconfirm", f"/tmp/{package.name}"])
    (root / "tmp" / package.name).unlink()
    _hide_apt(root)


def ensure_host_image(client: docker.DockerClient | None = None, flavour: str = "apt") -> str:
    """Build the image of a flavour (apt: `dockmaster-test/debian-ssh:1`) unless it exists (blocks minutes once)."""
    client = client or docker.from_env(timeout=300)
    tag, extra = FLAVOURS[flavour]
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap not found: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="dm-rootfs-") as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        _run([
            "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES + extra)}", SUITE, str(root),
            debian_mirror(),
        ])
        _customise(root, work, flavour)
        archive = work / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for item in sorted(root.iterdir()):
                if item.name not in ("proc", "sys", "dev"):
                    tar.add(str(item), arcname=item.name)
                else:
                    tar.add(str(item), arcname=item.name, recursive=False)
        _run([
            "docker", "import", "--change", 'CMD ["/usr/local/sbin/dm-init"]',
            "--change", "EXPOSE 22", str(archive), tag,
        ])
    return tag


if __name__ == "__main__":
    import sys

    print(ensure_host_image(flavour=sys.argv[1] if len(sys.argv) > 1 else "apt"))
