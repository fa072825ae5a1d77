"""Everything a group member derives from the group's key and secret.

Only holders of the group secret (members, and backup servers members
authorise) can compute these. Each purpose has its own key, so no key is
used for two things (docs/PROTOCOL.md §14.3):

- ``discovery_key``: the DHT topic members announce under. It is derived
  from the secret, so the group's public key alone (shown in invites' ids)
  does not reveal where its members are.
- ``value_key``: seals every group value stored in the DHT (member lists,
  repo adverts), so a DHT node that stores one learns nothing.
- ``capability_key``: the MAC a peer sends on a group channel to prove it
  holds the secret (as §10.2 does for a feed key).
- ``read_secret``: the read secret (§9.4) of every member's repo feed, so
  relays and backups hold repo blocks as ciphertext only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from typing_extensions import Buffer

from hyphal import aead
from hyphal.errors import DecodeError, DecryptionError, InvalidInput
from hyphal.hashing import derive_key
from hyphal.replication.capability import capability_mac, verify_capability

KEY_SIZE = 32
SECRET_SIZE = 32
_CONTEXT = "hyphal 2026-11 group "
MAX_VALUE_SIZE = 900
"""Plaintext of one sealed group value: the sealed form must fit a DHT mutable record (1000 bytes)."""
SEALED_OVERHEAD = aead.NONCE_SIZE + aead.TAG_SIZE


def new_group_secret() -> bytes:
    return secrets.token_bytes(SECRET_SIZE)


@dataclass(frozen=True, slots=True)
class GroupKeys:
    group_key: bytes
    secret: bytes = field(repr=False)
    discovery_key: bytes = field(init=False)
    value_key: bytes = field(init=False, repr=False)
    capability_key: bytes = field(init=False, repr=False)
    read_secret: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.group_key) != KEY_SIZE or len(self.secret) != SECRET_SIZE:
            raise InvalidInput(f"a group key and a group secret are {KEY_SIZE} bytes each")
        material = self.secret + self.group_key
        for name in ("discovery_key", "value_key", "capability_key", "read_secret"):
            object.__setattr__(self, name, derive_key(_CONTEXT + name.replace("_", " "), material))

    def seal_value(self, plaintext: Buffer, label: bytes) -> bytes:
        """``nonce[24] ‖ XChaCha20-Poly1305(value_key, nonce, plaintext, ad = discovery_key ‖ label)``.

        ``label`` names what the value is for (a record's salt, say), so a
        sealed value cannot be replayed as another one of the same group.
        """
        data = bytes(plaintext)
        if len(data) > MAX_VALUE_SIZE:
            raise InvalidInput(f"a group value is at most {MAX_VALUE_SIZE} bytes")
        nonce = secrets.token_bytes(aead.NONCE_SIZE)
        return nonce + aead.seal(self.value_key, nonce, data, self.discovery_key + label)

    def open_value(self, sealed: Buffer, label: bytes) -> bytes:
        """The plaintext of :meth:`seal_value`; :class:`DecryptionError` if altered or another group's."""
        data = bytes(sealed)
        if len(data) < SEALED_OVERHEAD:
            raise DecodeError("a sealed group value is too short")
        nonce, body = data[: aead.NONCE_SIZE], data[aead.NONCE_SIZE :]
        try:
            return aead.open(self.value_key, nonce, body, self.discovery_key + label)
        except DecryptionError:
            raise DecryptionError("group value does not open: altered, or not this group's") from None

    def channel_mac(self, handshake_hash: Buffer, sender_is_initiator: bool) -> bytes:
        return capability_mac(self.capability_key, handshake_hash, sender_is_initiator)

    def check_channel_mac(self, handshake_hash: Buffer, sender_is_initiator: bool, mac: Buffer) -> bool:
        return verify_capability(self.capability_key, handshake_hash, sender_is_initiator, mac)


__all__ = ["MAX_VALUE_SIZE", "SEALED_OVERHEAD", "GroupKeys", "new_group_secret"]
