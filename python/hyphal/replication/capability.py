"""The feed capability: a MAC proving knowledge of a feed key, bound to one connection.

Peers find each other by the discovery key, which anyone on the DHT can
see; only readers who know the feed key itself may replicate. Each side of a
connection sends ``AUTH(mac)`` with

    mac = KH(DK("hyphal 2026-11 feed capability", feed_key), handshake_hash ‖ u8(sender_is_initiator))

The handshake hash binds the MAC to this connection (it cannot be replayed
on another), and the role byte makes the two sides' MACs differ (it cannot
be reflected back to its sender).
"""

from __future__ import annotations

import hmac

from typing_extensions import Buffer

from hyphal.errors import InvalidInput
from hyphal.hashing import derive_key, keyed_hash

CAPABILITY_CONTEXT = "hyphal 2026-11 feed capability"
FEED_KEY_SIZE = 32
MAC_SIZE = 32


def capability_key(feed_key: Buffer) -> bytes:
    """The key every capability MAC of this feed is made with."""
    if memoryview(feed_key).nbytes != FEED_KEY_SIZE:
        raise InvalidInput(f"feed key must be {FEED_KEY_SIZE} bytes")
    return derive_key(CAPABILITY_CONTEXT, feed_key)


def capability_mac(cap_key: Buffer, handshake_hash: Buffer, sender_is_initiator: bool) -> bytes:
    """The MAC the connection's initiator (or responder) sends in its AUTH."""
    if memoryview(handshake_hash).nbytes == 0:
        raise InvalidInput("empty handshake hash")
    return keyed_hash(cap_key, bytes(handshake_hash) + bytes([1 if sender_is_initiator else 0]))


def verify_capability(
    cap_key: Buffer, handshake_hash: Buffer, sender_is_initiator: bool, mac: Buffer
) -> bool:
    """True when ``mac`` is the capability the sender should have sent (constant-time compare)."""
    expected = capability_mac(cap_key, handshake_hash, sender_is_initiator)
    return hmac.compare_digest(expected, bytes(mac))


__all__ = [
    "CAPABILITY_CONTEXT",
    "FEED_KEY_SIZE",
    "MAC_SIZE",
    "capability_key",
    "capability_mac",
    "verify_capability",
]
