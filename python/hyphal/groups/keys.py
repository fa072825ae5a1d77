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
GRANT_KEYS = ("discovery_key", "value_key", "capability_key", "read_secret")
GRANT_SIZE = KEY_SIZE * (1 + len(GRANT_KEYS))
WRAPPED_KEY_SIZE = aead.NONCE_SIZE + 2 * KEY_SIZE + aead.TAG_SIZE
_CONTEXT = "hyphal 2026-11 group "
MAX_VALUE_SIZE = 900
"""Plaintext of one sealed group value: the sealed form must fit a DHT mutable record (1000 bytes)."""
SEALED_OVERHEAD = aead.NONCE_SIZE + aead.TAG_SIZE


def new_group_secret() -> bytes:
    return secrets.token_bytes(SECRET_SIZE)


@dataclass(frozen=True, slots=True)
class GroupKeys:
    """A group's keys: all of them from ``secret``, or a backup's subset from :meth:`from_grant`."""

    group_key: bytes
    secret: bytes | None = field(repr=False)
    """``None`` for a backup server's keys: it cannot derive ``content_key`` or invite anyone."""
    discovery_key: bytes = field(init=False)
    value_key: bytes = field(init=False, repr=False)
    capability_key: bytes = field(init=False, repr=False)
    read_secret: bytes = field(init=False, repr=False)
    _content_key: bytes | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.group_key) != KEY_SIZE:
            raise InvalidInput(f"a group key is {KEY_SIZE} bytes")
        if self.secret is None:
            return  # from_grant sets the derived keys
        if len(self.secret) != SECRET_SIZE:
            raise InvalidInput(f"a group secret is {SECRET_SIZE} bytes")
        material = self.secret + self.group_key
        for name in (*GRANT_KEYS, "content_key"):
            derived = derive_key(_CONTEXT + name.replace("_", " "), material)
            object.__setattr__(self, "_content_key" if name == "content_key" else name, derived)

    @classmethod
    def from_grant(cls, grant: Buffer) -> GroupKeys:
        """The keys a backup server holds: :meth:`grant`'s bytes, without the secret."""
        data = bytes(grant)
        if len(data) != GRANT_SIZE:
            raise DecodeError(f"a group grant is {GRANT_SIZE} bytes")
        keys = cls(data[:KEY_SIZE], None)
        for i, name in enumerate(GRANT_KEYS, start=1):
            object.__setattr__(keys, name, data[i * KEY_SIZE : (i + 1) * KEY_SIZE])
        object.__setattr__(keys, "_content_key", None)
        return keys

    def grant(self) -> bytes:
        """``group_key ‖ discovery_key ‖ value_key ‖ capability_key ‖ read_secret`` (§14.3):
        enough to join the group channel, read adverts and repos, and fetch every blob,
        but not to open private blobs or make an invite."""
        return self.group_key + b"".join(getattr(self, name) for name in GRANT_KEYS)

    @property
    def is_member(self) -> bool:
        """Holds the group secret (a member device), not just a backup's grant."""
        return self.secret is not None

    @property
    def content_key(self) -> bytes:
        if self._content_key is None:
            raise InvalidInput("a backup's group keys cannot open private blobs")
        return self._content_key

    def wrap_private(self, blob_key: bytes, plaintext_hash: bytes, blob_hash: bytes) -> bytes:
        """What a repo PUT holds for a private blob (§14.1): its content key and plaintext
        hash, sealed under ``content_key`` with ``discovery_key ‖ blob_hash`` as associated data."""
        if len(blob_key) != KEY_SIZE or len(plaintext_hash) != KEY_SIZE:
            raise InvalidInput(f"a blob key and a plaintext hash are {KEY_SIZE} bytes each")
        nonce = secrets.token_bytes(aead.NONCE_SIZE)
        return nonce + aead.seal(
            self.content_key, nonce, blob_key + plaintext_hash, self.discovery_key + blob_hash
        )

    def unwrap_private(self, wrapped: bytes, blob_hash: bytes) -> tuple[bytes, bytes]:
        """``(key, plaintext_hash)`` from :meth:`wrap_private`'s bytes."""
        if len(wrapped) != WRAPPED_KEY_SIZE:
            raise DecodeError(f"a wrapped private blob key is {WRAPPED_KEY_SIZE} bytes")
        nonce, body = wrapped[: aead.NONCE_SIZE], wrapped[aead.NONCE_SIZE :]
        try:
            opened = aead.open(self.content_key, nonce, body, self.discovery_key + blob_hash)
        except DecryptionError:
            raise DecryptionError("private blob key does not open: altered, or not this group's") from None
        return opened[:KEY_SIZE], opened[KEY_SIZE:]

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


__all__ = [
    "GRANT_SIZE",
    "MAX_VALUE_SIZE",
    "SEALED_OVERHEAD",
    "WRAPPED_KEY_SIZE",
    "GroupKeys",
    "new_group_secret",
]
