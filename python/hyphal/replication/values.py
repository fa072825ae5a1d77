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

from hyphal.errors import DecodeError, HyphalError, InvalidInput, SignatureError
from hyphal.feed.value_feed import SignedValueFeed
from hyphal.replication.fanout import Fanout, Subscriber
from hyphal.signed_value import SignedValue

PROTOCOL = "hyphal/value/1"
VALUE_MESSAGE = 1
MAX_MESSAGE = 4096
"""A signed value encodes to under 1.2 KiB; anything larger is not one."""

log = logging.getLogger("hyphal.replication")


def encode_value_message(value: SignedValue) -> bytes:
    return bytes((VALUE_MESSAGE,)) + value.encode()


def decode_value_message(data: bytes) -> SignedValue:
    """Parse and verify one message; DecodeError or SignatureError on bad input."""
    if len(data) > MAX_MESSAGE:
        raise DecodeError(f"value message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    if not data or data[0] != VALUE_MESSAGE:
        raise DecodeError("not a VALUE message")
    return SignedValue.decode_verified(data[1:])


class SignedValueReplication(Fanout):
    """Keeps one :class:`SignedValueFeed` in sync with every attached connection."""

    def __init__(self, value: SignedValueFeed) -> None:
        super().__init__(PROTOCOL, value.id)
        self.value = value
        self._unsubscribe = value.on_change(self._on_change)

    async def _stopping(self) -> None:
        self._unsubscribe()
        await super()._stopping()

    def _opened(self, sub: Subscriber) -> None:
        if self.value.current is not None:
            sub.outbox.put(encode_value_message(self.value.current))

    def _on_change(self, version: SignedValue) -> None:
        self.broadcast(encode_value_message(version))

    def _on_message(self, sub: Subscriber, data: bytes) -> None:
        try:
            version = decode_value_message(data)
            self.value.apply(version)
        except (DecodeError, SignatureError, InvalidInput) as e:
            self._drop(sub, f"bad value: {e}")
            return
        except HyphalError as e:
            # The validate hook said no: the sender may just be relaying; keep it.
            log.info("value from %s rejected: %s", sub.connection, e)
            return
        current = self.value.current
        if current is not None and current.seq > version.seq:
            sub.outbox.put(encode_value_message(current))


__all__ = ["PROTOCOL", "SignedValueReplication", "decode_value_message", "encode_value_message"]
