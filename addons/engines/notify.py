"""Notification messages of the engines addon's events."""

from __future__ import annotations

from typing import Any


def _unreachable(e: Any) -> tuple[str, str, str]:
    return (f"Engine {e.engine} is unreachable",
            f"{e.error}. Its stacks show as unknown; Dockmaster keeps trying and tells you when it answers again.",
            f"engine {e.engine} was unreachable {{n}} more times")


def _recovered(e: Any) -> tuple[str, str, str]:
    minutes = e.down_for / 60
    took = f"{minutes:.0f} min" if minutes >= 1 else f"{e.down_for:.0f} s"
    return (f"Engine {e.engine} answers again", f"It was unreachable for {took}.",
            f"engine {e.engine} came back {{n}} more times")


MESSAGES = {"engine_unreachable": _unreachable, "engine_recovered": _recovered}
SUCCESS = frozenset({"engine_recovered"})
