"""The secret store's options on a node: :class:`SecretsConfig` (``Node(secrets=...)``)."""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.errors import InvalidInput

MAX_REPLICAS = 20
"""More copies than this cost every holder pushes and pings for no durability anyone needs."""


@dataclass(frozen=True, slots=True)
class SecretsConfig:
    """How a node runs its share of the replicated secret store (docs/PROTOCOL.md §11.10)."""

    replicas: int = 5
    """How many nodes, the XOR-closest to a secret's id, hold each secret."""
    interval: float = 300.0
    """Seconds between two checks that the holders of this node's secrets are alive."""
    skew: float = 300.0
    """How far (seconds) a request's timestamp may be from this node's clock; nonces are kept twice that."""
    request_timeout: float = 30.0
    """Seconds a put, get or delete through this node waits for the network."""
    handoff_timeout: float = 10.0
    """Seconds a graceful stop waits for the nodes that take over this node's secrets to acknowledge."""

    def __post_init__(self) -> None:
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int):
            raise InvalidInput("secrets.replicas must be an integer")
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise InvalidInput(f"secrets.replicas must be between 1 and {MAX_REPLICAS}")
        for name in ("interval", "skew", "request_timeout", "handoff_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"secrets.{name} must be a number of seconds")
            if not 0 < value < 1e9:
                raise InvalidInput(f"secrets.{name} must be more than 0 seconds")


__all__ = ["MAX_REPLICAS", "SecretsConfig"]
