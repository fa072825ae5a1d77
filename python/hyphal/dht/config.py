"""The tunables of a DHT node (:class:`DhtConfig`), shared by its core, record client and holder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hyphal.signed_value import SignedValue


@dataclass(slots=True)
class DhtConfig:
    """Tunables of a :class:`~hyphal.dht.node.DhtNode`; times are seconds."""

    k: int = 20
    alpha: int = 3
    disjoint_paths: int = 1
    """Disjoint lookup paths (S/Kademlia); 1 is plain Kademlia."""
    min_timeout: float = 0.05
    max_timeout: float = 2.0
    initial_timeout: float = 1.0
    """Timeout before any RTT sample; afterwards unknown nodes get 2·(SRTT+4·RTTVAR) of all samples."""
    token_rotation: float = 300.0
    rate: float = 200.0
    """Requests per second per source IP (token bucket)."""
    burst: float = 400.0
    maintenance_interval: float = 60.0
    refresh_interval: float = 900.0
    """A bucket untouched this long is refreshed by a lookup of a random id in it."""
    record_ttl: float = 7200.0
    """A holder keeps an immutable or mutable record this long after its last put."""
    republish_interval: float = 3000.0
    """The originator puts its records again this often (announces: also at half their TTL)."""
    replicate_interval: float = 3600.0
    """A holder pushes a record not put for this long to the closest nodes that lack it."""
    max_concurrent_replications: int = 4
    max_records: int = 100_000
    max_announces_per_topic: int = 64
    max_clock_skew: float = 300.0
    client: bool = False
    """A client sends no node record, so nobody adds it to a routing table."""
    refresh_after_bootstrap: bool = True
    repair_on_get: bool = True
    validate_mutable: Callable[[SignedValue], bool] | None = None
    """The application's hook: a holder stores (and a getter accepts) only values it approves."""


__all__ = ["DhtConfig"]
