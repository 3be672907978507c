"""Locally built test images (no registry is reachable): busybox from Debian's busybox-static."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import docker

BUSYBOX_IMAGE = "dockmaster-test/busybox:1"
_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/sh", "-c", "mkdir -p /tmp /var/www /etc && chmod 1777 /tmp \
 && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd \
 && echo 'nobody:x:65534:65534:nobody:/:/bin/false' >> /etc/passwd && echo 'root:x:0:' > /etc/group"]
CMD ["/bin/sh"]
"""


def busybox_binary() -> Path:
    """Debian's static busybox (package busybox-static)."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists():
            return path
    found = shutil.which("busybox")
    if found:
        return Path(found)
    raise RuntimeError("busybox not found: apt-get install busybox-static")


def ensure_busybox_image(client: docker.DockerClient | None = None) -> str:
    """Build the busybox test image once (cached by the engine between runs); returns its tag."""
    client = client or docker.from_env()
    try:
        client.images.get(BUSYBOX_IMAGE)
        return BUSYBOX_IMAGE
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(_DOCKERFILE)
        tar.addfile(info, io.BytesIO(_DOCKERFILE))
        tar.add(str(busybox_binary()), arcname="busybox")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=BUSYBOX_IMAGE, rm=True, pull=False)
    return BUSYBOX_IMAGE


if __name__ == "__main__":
    print(ensure_busybox_image())
