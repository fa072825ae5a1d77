"""What hyphal puts on the mainline DHT: info-hashes for its keys, and the records in BEP 44 values.

Info-hashes are domain-separated derivations, never the keys themselves:

- a feed's (or any) 32-byte discovery key maps to
  ``derive_key("hyphal 2026-12 mainline info-hash", discovery_key)[:20]``;
- the rendezvous where hyphal nodes find each other is
  ``derive_key("hyphal 2026-12 mainline rendezvous", b"")[:20]``.

A node's address pointer is a BEP 44 mutable item signed by the node's own
ed25519 identity key with salt ``hyphal/addresses/1``; its value is the
bencoded dict ``{"a": [b"host:port", ...], "n": b"hyphal/1"}`` and its seq is
the UNIX time in seconds when the addresses were signed (so it grows across
restarts without being stored). See docs/PROTOCOL.md §18.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyphal.errors import DecodeError, InvalidAddress, InvalidInput
from hyphal.hashing import derive_key
from hyphal.mainline.items import MAX_VALUE_SIZE, MutableItem
from hyphal.mainline.messages import bencode
from hyphal.net.address import format_address, parse_address
from hyphal.signing import KeyPair

INFO_HASH_CONTEXT = "hyphal 2026-12 mainline info-hash"
RENDEZVOUS_CONTEXT = "hyphal 2026-12 mainline rendezvous"
ADDRESSES_SALT = b"hyphal/addresses/1"
RECORD_TAG = b"hyphal/1"
MAX_ADDRESSES = 16


def info_hash_for(discovery_key: bytes) -> bytes:
    """The 20-byte info-hash a hyphal discovery key is announced under on mainline."""
    if len(discovery_key) != 32:
        raise InvalidInput("a discovery key is 32 bytes")
    return derive_key(INFO_HASH_CONTEXT, discovery_key)[:20]


RENDEZVOUS = derive_key(RENDEZVOUS_CONTEXT, b"")[:20]
"""Where every hyphal node with ``bootstrap_hyphal`` announces itself, to find hyphal peers."""


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """A node's current ``host:port`` addresses (the value of its address pointer)."""

    addresses: tuple[str, ...]

    def encode(self) -> dict[bytes, Any]:
        return {b"a": [a.encode("ascii") for a in self.addresses], b"n": RECORD_TAG}

    def sign(self, keypair: KeyPair, seq: int) -> MutableItem:
        """The pointer as a BEP 44 item; addresses are dropped from the end until it fits 1000 bytes."""
        record = AddressRecord(self.addresses[:MAX_ADDRESSES])
        while len(bencode(record.encode())) > MAX_VALUE_SIZE:
            record = AddressRecord(record.addresses[:-1])
        return MutableItem.sign(keypair, record.encode(), seq, ADDRESSES_SALT)

    @classmethod
    def decode(cls, value: object) -> AddressRecord:
        """The record in a verified item's value; :class:`DecodeError` if it is not one."""
        if not isinstance(value, dict) or value.get(b"n") != RECORD_TAG:
            raise DecodeError("not a hyphal address record")
        raw = value.get(b"a")
        if not isinstance(raw, list) or len(raw) > MAX_ADDRESSES:
            raise DecodeError("an address record has a list of at most 16 addresses")
        out = []
        for item in raw:
            try:
                if not isinstance(item, bytes):
                    raise DecodeError("an address is a string")
                out.append(format_address(parse_address(item.decode("ascii"))))
            except (UnicodeDecodeError, InvalidAddress) as e:
                raise DecodeError(f"a bad address in an address record: {e}") from None
        return cls(tuple(out))


__all__ = ["ADDRESSES_SALT", "RENDEZVOUS", "AddressRecord", "info_hash_for"]
