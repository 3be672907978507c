"""Keys of the operations console's own objects in `app.data`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.datakeys import DataKey

if TYPE_CHECKING:
    from .console import Console
    from .registry import OperationRegistry

REGISTRY_KEY: DataKey[OperationRegistry] = DataKey("ops")
CONSOLE_KEY: DataKey[Console] = DataKey("ops.console")
