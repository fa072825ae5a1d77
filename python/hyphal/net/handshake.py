"""The hyphal handshake: Noise XX bound to ed25519 identities, sans-I/O.

Each node is identified by an ed25519 key (:class:`~hyphal.signing.KeyPair`).
Its Noise static key is the X25519 key libsodium derives from the same seed,
so the XX handshake proves possession of the identity without a separate
signature. The ed25519 public key travels encrypted in the handshake payload
(message 2 for the responder, message 3 for the initiator) and the receiver
checks that it converts to the static key the handshake authenticated.

The payload also carries the protocol version, the sender's frame limit and
optional application data (a node's capabilities, say). See
docs/PROTOCOL.md §8 for the bytes.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from typing_extensions import Buffer

from hyphal.errors import DecodeError, HandshakeError, InvalidInput
from hyphal.net.frames import (
    DEFAULT_MAX_FRAME,
    MAX_MAX_FRAME,
    MIN_MAX_FRAME,
    check_max_frame,
    decode_varint,
    encode_varint,
)
from hyphal.net.noise import CipherState, HandshakeState, X25519KeyPair
from hyphal.signing import PUBLIC_KEY_SIZE, KeyPair, x25519_private_key, x25519_public_key

PROTOCOL_NAME = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
PROLOGUE = b"hyphal/1"
PROTOCOL_VERSION = 1
MAX_USER_DATA = 8192
"""Limit on the application data in a handshake payload, in bytes."""


def static_keypair(keypair: KeyPair) -> X25519KeyPair:
    """The Noise static key of an ed25519 identity (libsodium's conversion of its secret key)."""
    return X25519KeyPair.from_private(x25519_private_key(keypair))


def static_public_key(ed25519_public_key: bytes) -> bytes:
    """The X25519 public key an ed25519 public key converts to; rejects invalid keys."""
    try:
        return x25519_public_key(ed25519_public_key)
    except InvalidInput as exc:
        raise HandshakeError("the peer's ed25519 public key is not a valid curve point") from exc


@dataclass(frozen=True)
class HandshakePayload:
    """What each side says about itself inside the encrypted handshake."""

    public_key: bytes
    max_frame: int = DEFAULT_MAX_FRAME
    user_data: bytes = b""
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        """``u8 version ‖ public_key[32] ‖ varint max_frame ‖ varint len ‖ user_data``."""
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise InvalidInput("an ed25519 public key is 32 bytes")
        if len(self.user_data) > MAX_USER_DATA:
            raise InvalidInput(f"handshake user data is limited to {MAX_USER_DATA} bytes")
        check_max_frame(self.max_frame)
        return b"".join(
            (
                bytes((self.version,)),
                self.public_key,
                encode_varint(self.max_frame),
                encode_varint(len(self.user_data)),
                self.user_data,
            )
        )

    @classmethod
    def decode(cls, data: Buffer) -> HandshakePayload:
        view = memoryview(data)
        if len(view) < 1 + PUBLIC_KEY_SIZE:
            raise DecodeError("handshake payload too short")
        version = view[0]
        if version != PROTOCOL_VERSION:
            raise DecodeError(f"unsupported protocol version {version}")
        public_key = bytes(view[1 : 1 + PUBLIC_KEY_SIZE])
        max_frame, pos = decode_varint(view, 1 + PUBLIC_KEY_SIZE)
        if not MIN_MAX_FRAME <= max_frame <= MAX_MAX_FRAME:
            raise DecodeError(f"frame limit {max_frame} out of range")
        size, pos = decode_varint(view, pos)
        if size > MAX_USER_DATA:
            raise DecodeError(f"handshake user data of {size} bytes exceeds {MAX_USER_DATA}")
        if len(view) - pos != size:
            raise DecodeError("handshake payload length does not match its contents")
        return cls(public_key, max_frame, bytes(view[pos:]), version)


@dataclass(frozen=True)
class HandshakeResult:
    """An authenticated session: who the peer is and the keys for its frames."""

    remote_public_key: bytes
    """The peer's ed25519 public key, proven by the handshake."""
    handshake_hash: bytes
    """Noise's 64-byte ``h``: unique to this session, the same on both ends."""
    is_initiator: bool
    send_cipher: CipherState = field(repr=False)
    receive_cipher: CipherState = field(repr=False)
    remote_max_frame: int = DEFAULT_MAX_FRAME
    remote_user_data: bytes = b""

    @property
    def send_key(self) -> bytes:
        assert self.send_cipher.key is not None
        return self.send_cipher.key

    @property
    def receive_key(self) -> bytes:
        assert self.receive_cipher.key is not None
        return self.receive_cipher.key


class Handshake:
    """Drives one side of the hyphal handshake, message by message.

    The initiator calls :meth:`start` and sends its result; then each side
    passes every message it receives to :meth:`receive` and sends what it
    returns (if anything) until :attr:`complete`. Messages here are bare Noise
    messages; framing them is the caller's job (``frames.encode_handshake_message``).
    Every failure raises :class:`HandshakeError`.
    """

    def __init__(
        self,
        keypair: KeyPair,
        *,
        initiator: bool,
        expected_remote: bytes | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        user_data: bytes = b"",
        ephemeral: X25519KeyPair | None = None,
    ) -> None:
        """``ephemeral`` fixes the ephemeral key: for test vectors only, never in use."""
        if expected_remote is not None and not initiator:
            raise InvalidInput("only the initiator knows whom it expects")
        self._payload = HandshakePayload(keypair.public_key, max_frame, user_data).encode()
        self._expected_remote = expected_remote
        self._state = HandshakeState(
            PROTOCOL_NAME,
            initiator=initiator,
            prologue=PROLOGUE,
            static=static_keypair(keypair),
            ephemeral=ephemeral,
        )
        self._remote: HandshakePayload | None = None
        self._result: HandshakeResult | None = None

    @property
    def initiator(self) -> bool:
        return self._state.initiator

    @property
    def complete(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> HandshakeResult:
        if self._result is None:
            raise HandshakeError("the handshake is not complete")
        return self._result

    def start(self) -> bytes:
        """The initiator's first message (``-> e``, empty payload)."""
        if not self.initiator:
            raise HandshakeError("the responder does not start the handshake")
        return self._state.write_message(b"")

    def receive(self, message: Buffer) -> bytes | None:
        """Process the peer's message; returns the reply to send, if there is one."""
        payload = self._state.read_message(message)
        if self._remote is None and self._state.remote_static is not None:
            self._remote = self._check_identity(payload)
        elif payload:
            # The first message is unencrypted; hyphal puts nothing in it.
            raise HandshakeError("unexpected payload in the first handshake message")
        reply: bytes | None = None
        if not self._state.complete:
            # XX: the responder answers message 1 with its identity and the initiator
            # answers message 2 with its own; both carry the payload.
            reply = self._state.write_message(self._payload)
        if self._state.complete:
            self._finish()
        return reply

    def _check_identity(self, payload: bytes) -> HandshakePayload:
        try:
            remote = HandshakePayload.decode(payload)
        except DecodeError as exc:
            raise HandshakeError(f"bad handshake payload: {exc}") from exc
        remote_static = self._state.remote_static
        assert remote_static is not None
        if not hmac.compare_digest(static_public_key(remote.public_key), remote_static):
            raise HandshakeError("the peer's ed25519 key does not match its Noise static key")
        expected = self._expected_remote
        if expected is not None and not hmac.compare_digest(remote.public_key, expected):
            raise HandshakeError(
                f"expected peer {expected.hex()[:16]}…, reached {remote.public_key.hex()[:16]}…"
            )
        return remote

    def _finish(self) -> None:
        assert self._remote is not None
        send, receive = self._state.split()
        self._result = HandshakeResult(
            remote_public_key=self._remote.public_key,
            handshake_hash=self._state.handshake_hash,
            is_initiator=self.initiator,
            send_cipher=send,
            receive_cipher=receive,
            remote_max_frame=self._remote.max_frame,
            remote_user_data=self._remote.user_data,
        )


__all__ = [
    "MAX_USER_DATA",
    "PROLOGUE",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "Handshake",
    "HandshakePayload",
    "HandshakeResult",
    "static_keypair",
    "static_public_key",
]
