"""Replicates a signed value (the seed's "pubkey-value") to every connected subscriber.

Each attached connection gets one channel ("hyphal/value/1", id = the
value's id, PROTOCOL.md §10.6). Both sides send their current version when
the channel opens and every newer version as it is accepted, so a new
version spreads through any mesh of subscribers, relayed by each. A
receiver keeps a version only if it is signed by the value's key, has a
strictly higher seq and passes the optional validate hook; a peer that sends
a malformed or forged version is dropped. A peer that sends an older
version is answered with ours, so it catches up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hyphal.errors import DecodeError, HyphalError, InvalidInput, SignatureError
from hyphal.feed.signed_value import SignedValue, SignedValueFeed
from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import Channel, Connection
from hyphal.replication.outbox import CHANNEL_ENDED, Outbox

PROTOCOL = "hyphal/value/1"
VALUE_MESSAGE = 1
MAX_MESSAGE = 4096
"""A signed value encodes to under 1.2 KiB; anything larger is not one."""

log = logging.getLogger("hyphal.replication")


@dataclass(eq=False)
class _Subscriber:
    connection: Connection
    channel: Channel
    outbox: Outbox


def encode_value_message(value: SignedValue) -> bytes:
    return bytes((VALUE_MESSAGE,)) + value.encode()


def decode_value_message(data: bytes) -> SignedValue:
    """Parse and verify one message; DecodeError or SignatureError on bad input."""
    if len(data) > MAX_MESSAGE:
        raise DecodeError(f"value message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    if not data or data[0] != VALUE_MESSAGE:
        raise DecodeError("not a VALUE message")
    return SignedValue.decode_verified(data[1:])


class SignedValueReplication(TaskOwner):
    """Keeps one :class:`SignedValueFeed` in sync with every attached connection."""

    def __init__(self, value: SignedValueFeed) -> None:
        self.value = value
        self._subscribers: list[_Subscriber] = []
        self._unsubscribe = value.on_change(self._on_change)
        self.dropped: list[tuple[bytes, str]] = []
        """(remote public key, reason) of every subscriber dropped for bad input."""

    async def _stopping(self) -> None:
        self._unsubscribe()
        await super()._stopping()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def attach(self, connection: Connection) -> None:
        """Open the value's channel on ``connection`` and keep it in sync until either closes."""
        self._require_running()
        channel = await connection.open_channel(PROTOCOL, self.value.id)
        sub = _Subscriber(connection, channel, Outbox(channel))
        self._subscribers.append(sub)
        if self.value.current is not None:
            sub.outbox.put(encode_value_message(self.value.current))
        self._spawn(self._writer, sub)
        self._spawn(self._reader, sub)

    def _on_change(self, version: SignedValue) -> None:
        message = encode_value_message(version)
        for sub in self._subscribers:
            sub.outbox.put(message)

    async def _reader(self, sub: _Subscriber) -> None:
        try:
            async for data in sub.channel:
                try:
                    version = decode_value_message(data)
                    self.value.apply(version)
                except (DecodeError, SignatureError, InvalidInput) as e:
                    self._drop(sub, f"bad value: {e}")
                    return
                except HyphalError as e:
                    # The validate hook said no: the sender may just be relaying; keep it.
                    log.info("value from %s rejected: %s", sub.connection, e)
                    continue
                current = self.value.current
                if current is not None and current.seq > version.seq:
                    sub.outbox.put(encode_value_message(current))
        except CHANNEL_ENDED:
            pass
        finally:
            self._forget(sub)

    async def _writer(self, sub: _Subscriber) -> None:
        await sub.outbox.run()
        self._forget(sub)

    def _drop(self, sub: _Subscriber, reason: str) -> None:
        log.warning("dropping value subscriber %s: %s", sub.connection, reason)
        self.dropped.append((sub.connection.remote_public_key, reason))
        self._forget(sub)
        self._spawn(sub.channel.aclose, reason)

    def _forget(self, sub: _Subscriber) -> None:
        sub.outbox.close()
        if sub in self._subscribers:
            self._subscribers.remove(sub)


__all__ = ["PROTOCOL", "SignedValueReplication", "decode_value_message", "encode_value_message"]
