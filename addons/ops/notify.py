"""Notification messages of the operations console's events."""

from __future__ import annotations

from typing import Any


def _low_disk(e: Any) -> tuple[str, str, str]:
    return (f"Low disk space on {e.target}", f"{e.used_percent:.0f}% used (threshold {e.threshold:.0f}%).",
            f"low disk space on {e.target} was reported {{n}} more times")


def _image_update(e: Any) -> tuple[str, str, str]:
    return (f"New image for {e.stack}", f"`{e.image}` has a newer version in its registry.",
            f"a new image for {e.stack} was reported {{n}} more times")


MESSAGES = {"low_disk": _low_disk, "image_update_available": _image_update}
