"""Options of the mainline DHT bridge: the node's ``[mainline]`` section and the KRPC node's tunables.

:class:`MainlineConfig` is what a user sets (``enabled`` is off by default:
nothing talks to the public DHT unless asked). :class:`KrpcConfig` holds
the protocol knobs of one :class:`~hyphal.mainline.core.MainlineNode`,
chosen to be polite on a network that is not ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.errors import InvalidInput

DEFAULT_ROUTERS = (
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
)
"""The well-known mainline bootstrap routers."""


@dataclass(slots=True)
class KrpcConfig:
    """Tunables of a mainline KRPC node; times are seconds."""

    k: int = 8
    alpha: int = 3
    max_queries_per_lookup: int = 64
    query_timeout: float = 2.0
    query_rate: float = 25.0
    """Our own queries per second, all addresses together (a token bucket; excess waits in a queue)."""
    query_burst: float = 50.0
    max_queued_queries: int = 2000
    """Past this many queries waiting for the rate limit, new ones fail at once (back-pressure)."""
    backoff: float = 30.0
    """After a node failed ``max_failures`` queries in a row we leave it alone this long (then longer)."""
    max_failures: int = 2
    request_rate: float = 50.0
    """Queries per second we answer per source IP."""
    request_burst: float = 100.0
    read_only: bool = False
    """BEP 43: ask with ``ro=1``, answer nobody, stay out of others' routing tables."""
    token_rotation: float = 300.0
    item_ttl: float = 7200.0
    """How long we hold a BEP 44 item someone put here (mainline's two hours)."""
    peer_ttl: float = 1800.0
    max_items: int = 5000
    max_peers_per_hash: int = 100
    max_hashes: int = 5000
    maintenance_interval: float = 60.0
    ping_after: float = 900.0
    """A contact silent this long is pinged at the next maintenance."""


@dataclass(frozen=True, slots=True)
class MainlineConfig:
    """The node's ``[mainline]`` section (see docs/PROTOCOL.md §18)."""

    enabled: bool = False
    port: int = 0
    """UDP port of the KRPC node (0: any free port); it binds the node's listen host."""
    bootstrap: tuple[str, ...] = DEFAULT_ROUTERS
    """``host:port`` of mainline routers or nodes to join through."""
    read_only: bool | None = None
    """BEP 43 read-only mode; unset: read-only unless the node's address is public."""
    discovery: bool = True
    """Announce and look up shared feeds' discovery keys on mainline."""
    publish_addresses: bool = True
    """Keep a signed pointer to this node's addresses (a BEP 44 mutable item) on mainline."""
    bootstrap_hyphal: bool = True
    """When no configured hyphal seed answers, find hyphal peers on mainline and join through them."""
    announce_interval: float = 900.0
    """Announces are repeated this often (mainline nodes keep peers for about 30 minutes)."""
    publish_interval: float = 3600.0
    """Pointers are put again this often (mainline nodes keep items for about 2 hours)."""
    query_rate: float = 25.0
    """Our queries per second at most."""

    def __post_init__(self) -> None:
        if self.port > 65535:
            raise InvalidInput("port must be at most 65535")
        if self.announce_interval < 1 or self.publish_interval < 1:
            raise InvalidInput("announce_interval and publish_interval must be at least 1 second")
        if self.publish_interval >= 7200:
            raise InvalidInput(
                "publish_interval must be under 7200 s, or items expire before they are refreshed"
            )
        if self.query_rate <= 0:
            raise InvalidInput("query_rate must be positive")


__all__ = ["DEFAULT_ROUTERS", "KrpcConfig", "MainlineConfig"]
