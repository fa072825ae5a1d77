"""Kademlia DHT: signed node records, iterative lookups, signed records (docs/PROTOCOL.md §11).

Layers, bottom up: :mod:`.ids` and :mod:`.records` (formats and signatures),
:mod:`.messages` (the datagram codec), :mod:`.routing`, :mod:`.rtt`,
:mod:`.tokens`, :mod:`.limits` and :mod:`.store` (pieces of state),
:mod:`.lookup` and :mod:`.node` (the sans-I/O state machine) and
:mod:`.udp` (the anyio driver on a real socket).
"""

from __future__ import annotations

from hyphal.dht.ids import immutable_key, node_id
from hyphal.dht.node import DhtConfig, DhtNode, Operation
from hyphal.dht.records import AnnounceRecord, NodeRecord

__all__ = [
    "AnnounceRecord",
    "DhtConfig",
    "DhtNode",
    "NodeRecord",
    "Operation",
    "immutable_key",
    "node_id",
]
