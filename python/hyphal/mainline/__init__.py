"""The mainline BitTorrent DHT bridge (BEP 5, 42, 43, 44): a KRPC node, and what hyphal uses it for.

Layers, bottom up: :mod:`.ids` (160-bit ids, BEP 42), :mod:`.messages`
(KRPC, bencoded with ``fastbencode``), :mod:`.items` (BEP 44 items and their
signatures), :mod:`.routing`, :mod:`.lookup`, :mod:`.store` and
:mod:`.server` (pieces of state and the answering side), :mod:`.config`,
then the sans-I/O node: :mod:`.core` (:class:`~.core.KrpcCore`: queries,
rate limits, back-off, lookups) and :mod:`.node` (:class:`MainlineNode`:
BEP 5 peers and BEP 44 items); :mod:`.udp` (the anyio driver) and
:mod:`.bridge` (the node integration: discovery, signed pointers,
bootstrap). :mod:`.records` holds the hyphal records carried in BEP 44
values and the key→info-hash mapping. Everything here needs the
``mainline`` extra (``pip install 'hyphal[mainline]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.mainline.config import KrpcConfig, MainlineConfig
    from hyphal.mainline.items import ImmutableItem, MutableItem
    from hyphal.mainline.node import MainlineNode, PeersResult, PutResult
    from hyphal.mainline.udp import MainlineUdp

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "KrpcConfig": ".config",
        "MainlineConfig": ".config",
        "ImmutableItem": ".items",
        "MutableItem": ".items",
        "MainlineNode": ".node",
        "PeersResult": ".node",
        "PutResult": ".node",
        "MainlineUdp": ".udp",
    },
)

__all__ = [
    "ImmutableItem",
    "KrpcConfig",
    "MainlineConfig",
    "MainlineNode",
    "MainlineUdp",
    "MutableItem",
    "PeersResult",
    "PutResult",
]
