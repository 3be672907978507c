"""Host paths: where the data dir is on the Docker host when Dockmaster runs in a container."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.hostpaths import HostPaths, from_mounts, own_container_id

CID = "4f" * 32


@pytest.mark.parametrize(("mounts", "host", "how"), [
    ([{"Source": "/mnt/user/appdata/dockmaster", "Destination": "/config"}],
     "/mnt/user/appdata/dockmaster/.dockmaster", "on the Docker host (mount /mnt/user/appdata/dockmaster -> /config)"),
    ([{"Source": "/srv/dm", "Destination": "/srv/dm"}], "/srv/dm/.dockmaster", "same path on the host"),
    # The deepest mount wins: a separate volume for the data dir inside /config.
    ([{"Source": "/mnt/cfg", "Destination": "/config"},
      {"Source": "/var/lib/docker/volumes/dmdata/_data", "Destination": "/config/.dockmaster"}],
     "/var/lib/docker/volumes/dmdata/_data", "mount /var/lib/docker/volumes/dmdata/_data -> /config/.dockmaster"),
    ([{"Source": "/mnt/other", "Destination": "/other"}], None, "on no volume or bind mount"),
])
def test_the_mount_holding_the_data_dir_gives_its_host_path(mounts: list[dict[str, str]], host: str | None,
                                                            how: str) -> None:
    data_dir = Path("/config/.dockmaster") if "/srv/dm" not in str(mounts) else Path("/srv/dm/.dockmaster")
    paths = from_mounts(data_dir, mounts)
    assert paths.host == (Path(host) if host else None)
    assert how in paths.how
    assert paths.ok is (host is not None)


def test_paths_outside_the_data_dir_are_left_as_written() -> None:
    paths = HostPaths(Path("/config/.dockmaster"), Path("/mnt/appdata/dm/.dockmaster"), "mount")
    mapped = paths.to_host("/config/.dockmaster/stacks/app/work/data")
    assert mapped == "/mnt/appdata/dm/.dockmaster/stacks/app/work/data"
    assert paths.to_host("/mnt/user/media") == "/mnt/user/media"
    assert paths.to_host("/config/.dockmaster-other/x") == "/config/.dockmaster-other/x"
    unreachable = HostPaths(Path("/config/.dockmaster"), None, "inside the container")
    assert unreachable.to_host("/config/.dockmaster/stacks/a/work/data") is None
    assert unreachable.to_host("/srv/media") == "/srv/media"


def test_own_container_id_comes_from_the_mounts_or_the_cgroup() -> None:
    mountinfo = f"712 690 254:1 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
    assert own_container_id(mountinfo, "") == CID
    assert own_container_id("", f"0::/system.slice/docker-{CID}.scope\n") == CID
    assert own_container_id("1 0 0:1 / / rw - overlay overlay rw\n", "0::/\n") is None
