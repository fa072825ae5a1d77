"""The DHT node as a sans-I/O state machine (docs/PROTOCOL.md §11): :class:`DhtNode`.

A node is three layers, each in its own module, importing downward only:

- :mod:`hyphal.dht.core`: :class:`~hyphal.dht.core.DhtCore`, Kademlia itself
  (datagrams in and out, timers, requests and responses, routing-table
  upkeep, iterative lookups) and how a driver runs it;
- :mod:`hyphal.dht.record_client`: putting and getting records (announces,
  immutable and mutable records), repair and republishing;
- :mod:`hyphal.dht.holder`: storing records for others, and re-replicating them.

This module assembles them; :class:`DhtConfig`, :class:`Reply`,
:class:`RequestContext`, :data:`Handler` and :class:`Operation` are re-exported
here, where callers have always imported them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hyphal.dht.config import DhtConfig
from hyphal.dht.holder import RecordHolder
from hyphal.dht.operation import Operation
from hyphal.dht.record_client import RecordClient
from hyphal.dht.record_store import RecordStore
from hyphal.dht.records import Addr
from hyphal.dht.rpc import Handler, Reply, RequestContext
from hyphal.signing import KeyPair


class DhtNode(RecordClient):
    """One DHT node: the core's routing and lookups, the record client, and the holder of others' records.

    Layers rather than a node that forwards to parts: every public method
    (``bootstrap``, ``put_mutable``, ``lookup``, …) is the layer's own, with
    no forwarding code to keep in step, and each layer reaches only down.
    """

    def __init__(
        self,
        keypair: KeyPair,
        addresses: Sequence[Addr],
        *,
        now: float,
        config: DhtConfig | None = None,
        store: RecordStore | None = None,
        rng: random.Random | None = None,
        record_seq: int | None = None,
    ) -> None:
        super().__init__(
            keypair, addresses, now=now, config=config, store=store, rng=rng, record_seq=record_seq
        )
        self.holder = RecordHolder(self)
        self._handlers.update(self.holder.handlers())

    def _maintenance(self, now: float) -> None:
        super()._maintenance(now)
        self.holder.queue_replication(now)


__all__ = ["DhtConfig", "DhtNode", "Handler", "Operation", "Reply", "RequestContext"]
