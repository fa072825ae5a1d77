"""The ephemeral message channel's bytes: the group message key and the signed, sealed envelope.

A group message (docs/PROTOCOL.md §16.1) is one envelope::

    MSG := u8 version=1 ‖ id[16] ‖ u64le(sent_ms) ‖ u32le(ttl_ms) ‖ sender[32]
           ‖ nonce[24] ‖ u16le(len) ‖ ciphertext ‖ signature[64]

The ciphertext is the topic and body sealed under the group's message key
(XChaCha20-Poly1305, the header and the channel id as associated data), so
only holders of the group secret read it. The signature is the sender
device's, over everything before it and the channel id, so an always-on
node that has no key can still check who sent a message, refuse forgeries
and rate-limit per device before it forwards one, and can change nothing
without the change being caught. Pure: no I/O, no clock, no randomness
(the caller passes ``id``, ``nonce`` and ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal import _core, aead
from hyphal.codec import Reader, Writer, byte_view
from hyphal.errors import DecodeError, DecryptionError, InvalidInput
from hyphal.groups.keys import GroupKeys
from hyphal.hashing import derive_key
from hyphal.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, namespaced_message, require_signature

PROTOCOL = "hyphal/msg/1"
"""The channel's protocol name; its id is the group's discovery key."""
VERSION = 1
ID_SIZE = 16
MAX_TOPIC = 64
"""A topic is at most this many UTF-8 bytes (``""``: the default topic)."""
MAX_BODY = 16_000
"""The largest message body, in bytes."""
MAX_TTL_MS = 3_600_000
"""A message lives at most an hour: the seen-id window holds each id this long at most."""
DEFAULT_TTL_MS = 300_000
HEADER_SIZE = 1 + ID_SIZE + 8 + 4 + PUBLIC_KEY_SIZE
MAX_PLAINTEXT = 1 + MAX_TOPIC + MAX_BODY
MAX_CIPHERTEXT = MAX_PLAINTEXT + aead.TAG_SIZE
MAX_ENVELOPE = HEADER_SIZE + aead.NONCE_SIZE + 2 + MAX_CIPHERTEXT + SIGNATURE_SIZE
"""The largest envelope on the wire; anything longer is refused before it is parsed."""
MESSAGE_KEY_CONTEXT = "hyphal 2026-11 group message key"
MESSAGE_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 group message signature", b"")


def message_key(keys: GroupKeys) -> bytes:
    """``derive_key("hyphal 2026-11 group message key", secret ‖ group_key)`` (§14.3's scheme).

    Derived from the group secret, so members hold it and a backup server,
    which holds only a grant, does not.
    """
    if keys.secret is None:
        raise InvalidInput("a backup's group keys cannot open group messages")
    return derive_key(MESSAGE_KEY_CONTEXT, keys.secret + keys.group_key)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message as it travels: what anyone on the path can check, and the sealed rest."""

    id: bytes
    sent_ms: int
    ttl_ms: int
    sender: bytes
    nonce: bytes
    ciphertext: bytes
    signature: bytes
    raw: bytes
    """The envelope's bytes as received (what a relay forwards, unchanged)."""

    @property
    def expires_ms(self) -> int:
        return self.sent_ms + self.ttl_ms

    @property
    def header(self) -> bytes:
        return self.raw[:HEADER_SIZE]


@dataclass(frozen=True, slots=True)
class Message:
    """A message opened with the group's message key."""

    id: bytes
    sender: bytes
    """The device key that signed it."""
    sent_ms: int
    ttl_ms: int
    topic: str
    body: bytes


def _check_topic(topic: str) -> bytes:
    raw = topic.encode("utf-8")
    if len(raw) > MAX_TOPIC:
        raise InvalidInput(f"a message topic is at most {MAX_TOPIC} bytes of UTF-8")
    return raw


def seal_message(
    keypair: KeyPair,
    key: bytes,
    channel_id: bytes,
    *,
    id: bytes,  # noqa: A002
    nonce: bytes,
    sent_ms: int,
    ttl_ms: int,
    topic: str,
    body: Buffer,
) -> bytes:
    """The envelope of a new message from ``keypair``'s device (``id`` and ``nonce`` random)."""
    data = bytes(body)
    if len(data) > MAX_BODY:
        raise InvalidInput(f"a message body is at most {MAX_BODY} bytes; this one is {len(data)}")
    if not 0 < ttl_ms <= MAX_TTL_MS:
        raise InvalidInput(f"a message TTL is 1 ms to {MAX_TTL_MS // 1000} s")
    if len(id) != ID_SIZE or len(nonce) != aead.NONCE_SIZE:
        raise InvalidInput(f"a message id is {ID_SIZE} bytes and a nonce {aead.NONCE_SIZE}")
    raw_topic = _check_topic(topic)
    header = (
        Writer()
        .u8(VERSION, "version")
        .fixed(id, ID_SIZE, "id")
        .u64(sent_ms, "sent_ms")
        .u32(ttl_ms, "ttl_ms")
        .fixed(keypair.public_key, PUBLIC_KEY_SIZE, "sender")
        .to_bytes()
    )
    plaintext = bytes((len(raw_topic),)) + raw_topic + data
    ciphertext = aead.seal(key, nonce, plaintext, channel_id + header)
    unsigned = (
        Writer(header)
        .fixed(nonce, aead.NONCE_SIZE, "nonce")
        .bytes16(ciphertext, MAX_CIPHERTEXT, "ciphertext")
        .to_bytes()
    )
    signature = keypair.sign(namespaced_message(MESSAGE_NAMESPACE, channel_id, unsigned))
    return unsigned + signature


def decode_envelope(data: Buffer, channel_id: bytes) -> Envelope:
    """Parse an envelope and check its sender's signature (no key needed).

    :class:`DecodeError` if it is oversized or malformed,
    :class:`~hyphal.errors.SignatureError` if the signature does not verify
    (forged, altered, or from another group's channel).
    """
    view = byte_view(data)
    if len(view) > MAX_ENVELOPE:
        raise DecodeError(f"a group message is at most {MAX_ENVELOPE} bytes; this one is {len(view)}")
    raw = bytes(view)
    reader = Reader(raw, "group message")
    version = reader.u8("version")
    if version != VERSION:
        raise DecodeError(f"unknown group message version {version}")
    id_ = reader.take(ID_SIZE, "id")
    sent_ms = reader.u64("sent_ms")
    ttl_ms = reader.u32("ttl_ms")
    sender = reader.take(PUBLIC_KEY_SIZE, "sender")
    nonce = reader.take(aead.NONCE_SIZE, "nonce")
    ciphertext = reader.bytes16(MAX_CIPHERTEXT, "ciphertext", min_size=aead.TAG_SIZE + 1)
    signed_size = reader.offset
    signature = reader.take(SIGNATURE_SIZE, "signature")
    reader.expect_end()
    if not 0 < ttl_ms <= MAX_TTL_MS:
        raise DecodeError(f"a message TTL is 1 ms to {MAX_TTL_MS} ms, not {ttl_ms}")
    require_signature(sender, namespaced_message(MESSAGE_NAMESPACE, channel_id, raw[:signed_size]), signature)
    return Envelope(id_, sent_ms, ttl_ms, sender, nonce, ciphertext, signature, raw)


def open_envelope(envelope: Envelope, key: bytes, channel_id: bytes) -> Message:
    """The message inside: :class:`DecryptionError` if it does not open under ``key``."""
    try:
        plaintext = aead.open(key, envelope.nonce, envelope.ciphertext, channel_id + envelope.header)
    except DecryptionError:
        raise DecryptionError(
            "group message does not open: not sealed with this group's message key"
        ) from None
    reader = Reader(plaintext, "group message plaintext")
    raw_topic = reader.bytes8(MAX_TOPIC, "topic")
    body = reader.rest("body", MAX_BODY)
    try:
        topic = raw_topic.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a message topic is not UTF-8") from None
    return Message(envelope.id, envelope.sender, envelope.sent_ms, envelope.ttl_ms, topic, body)


__all__ = [
    "DEFAULT_TTL_MS",
    "ID_SIZE",
    "MAX_BODY",
    "MAX_ENVELOPE",
    "MAX_TOPIC",
    "MAX_TTL_MS",
    "MESSAGE_NAMESPACE",
    "PROTOCOL",
    "Envelope",
    "Message",
    "decode_envelope",
    "message_key",
    "open_envelope",
    "seal_message",
]
