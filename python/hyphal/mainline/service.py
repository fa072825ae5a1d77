"""How a node starts its mainline bridge: only when ``[mainline] enabled`` is set.

Kept apart from :mod:`.bridge` so that ``node.py`` imports nothing of the
bridge (nor the ``mainline`` extra) unless the bridge is turned on.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from hyphal.extras import EXTRAS, require
from hyphal.mainline.config import MainlineConfig

if TYPE_CHECKING:
    from hyphal.mainline.bridge import BridgeHost, MainlineBridge


async def start_mainline(
    node: BridgeHost, config: MainlineConfig, stack: contextlib.AsyncExitStack
) -> MainlineBridge | None:
    """The node's running bridge (closed with ``stack``), or None when ``config`` leaves it off."""
    if not config.enabled:
        return None
    for module in EXTRAS["mainline"]:  # a missing package stops the start here, naming the extra
        require("mainline", module, "the mainline DHT bridge ([mainline] enabled = true)")
    from hyphal.mainline.bridge import MainlineBridge

    listen_host = node.address[0]
    return await stack.enter_async_context(MainlineBridge(node, config, listen_host=listen_host))


__all__ = ["start_mainline"]
