"""Fetching a feed's manifest from a peer, so a reader can start from the feed key alone.

The manifest hashes to the feed key, so it must never reach a peer that has
not proved it knows the key: the requester first sends the feed's capability
MAC (PROTOCOL.md §10.2) on a ``hyphal/manifest/1`` channel (id = discovery
key), and the holder answers with the manifest only if the MAC verifies. The
requester accepts it only if it hashes to the key, so a lying holder is
caught at once. See PROTOCOL.md §10.7.
"""

from __future__ import annotations

import logging
import math

import anyio

from hyphal.errors import DecodeError, ProtocolError, VerificationError
from hyphal.feed.manifest import Manifest, discovery_key
from hyphal.net.connection import Channel, Connection
from hyphal.net.outbox import CHANNEL_ENDED
from hyphal.replication.capability import capability_key, capability_mac, verify_capability

PROTOCOL = "hyphal/manifest/1"
MAX_MANIFEST = 8192

log = logging.getLogger("hyphal.replication")


async def fetch_manifest(
    connection: Connection, feed_key: bytes, *, timeout: float | None = 10.0
) -> Manifest:
    """Ask the peer for the manifest of ``feed_key``; it must hash to the key.

    Raises :class:`VerificationError` if the peer sends a manifest of another
    feed, :class:`ProtocolError` if it closes the channel without one, and
    ``TimeoutError`` after ``timeout`` seconds.
    """
    channel = await connection.open_channel(PROTOCOL, discovery_key(feed_key))
    try:
        with anyio.fail_after(math.inf if timeout is None else timeout):
            mac = capability_mac(capability_key(feed_key), connection.handshake_hash, connection.is_initiator)
            await channel.send(mac)
            try:
                data = await channel.receive()
            except CHANNEL_ENDED as e:
                raise ProtocolError(f"{connection} closed the manifest channel without a manifest") from e
    finally:
        await channel.aclose()
    if len(data) > MAX_MANIFEST:
        raise DecodeError(f"manifest of {len(data)} bytes is too large")
    manifest = Manifest.decode(data)
    if manifest.key != feed_key:
        log.warning("%s sent a manifest that does not hash to the feed key", connection)
        raise VerificationError("the peer's manifest does not hash to the feed key")
    return manifest


async def serve_manifest(connection: Connection, channel: Channel, feed_key: bytes, manifest: bytes) -> None:
    """Answer one manifest request on ``channel`` if the peer proves it knows ``feed_key``.

    Returns when the answer is sent, or when the peer closes the channel or
    sends a MAC that does not verify (logged; the channel is closed).
    """
    try:
        await _answer(connection, channel, feed_key, manifest)
    finally:
        # Also when the replication stops first (a group closed on this node): a pair left open
        # would make attaching the feed again on this connection fail as "already open".
        with anyio.CancelScope(shield=True):
            await channel.aclose()


async def _answer(connection: Connection, channel: Channel, feed_key: bytes, manifest: bytes) -> None:
    try:
        mac = await channel.receive()
    except CHANNEL_ENDED:
        return
    try:
        ok = verify_capability(
            capability_key(feed_key), connection.handshake_hash, not connection.is_initiator, mac
        )
        if not ok:
            log.warning("%s asked for a manifest without the feed's capability", connection)
            await channel.aclose("bad capability")
            return
        await channel.send(manifest)
    except CHANNEL_ENDED:
        return


__all__ = ["PROTOCOL", "fetch_manifest", "serve_manifest"]
