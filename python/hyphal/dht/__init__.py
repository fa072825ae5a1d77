"""Kademlia DHT: signed node records, iterative lookups, signed records (docs/PROTOCOL.md §11).

Layers, bottom up: :mod:`.ids` and :mod:`.records` (formats and signatures),
:mod:`.messages` (the datagram codec), :mod:`.routing`, :mod:`.rtt`,
:mod:`.tokens`, :mod:`.limits`, :mod:`.timers` and :mod:`.record_store`
(pieces of state; :mod:`.sqlite_records` is the SQLite record store), :mod:`.config`,
:mod:`.lookup`, :mod:`.rpc` and :mod:`.operation`, then the sans-I/O node:
:mod:`.core` (routing and lookups), :mod:`.record_client` (putting and
getting records), :mod:`.holder` (holding and re-replicating them) and
:mod:`.node`, which assembles them into :class:`DhtNode`; and :mod:`.udp`
(the anyio driver on a real socket). :mod:`hyphal.sim` runs the same
:class:`DhtNode` in virtual time; :mod:`hyphal.secrets` builds the
replicated secret store on its extension points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.dht.ids import immutable_key, node_id
    from hyphal.dht.node import DhtConfig, DhtNode, Operation
    from hyphal.dht.records import AnnounceRecord, NodeRecord

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "immutable_key": ".ids",
        "node_id": ".ids",
        "DhtConfig": ".node",
        "DhtNode": ".node",
        "Operation": ".node",
        "AnnounceRecord": ".records",
        "NodeRecord": ".records",
    },
)

__all__ = [
    "AnnounceRecord",
    "DhtConfig",
    "DhtNode",
    "NodeRecord",
    "Operation",
    "immutable_key",
    "node_id",
]
