"""The Noise protocol framework (revision 34), sans-I/O.

Composes existing primitives into Noise's CipherState, SymmetricState and
HandshakeState: X25519 from libsodium (pynacl), ChaChaPoly from the Rust core
(``_core.chacha20poly1305_*``), and HMAC/HKDF over a hash from :mod:`hashlib`.
The hash is a parameter (:data:`BLAKE2B`, :data:`SHA256`) so the cacophony
vectors of several suites can be checked; hyphal itself uses
``Noise_XX_25519_ChaChaPoly_BLAKE2b``. Only the ``NN`` and ``XX`` patterns are
defined: they are all hyphal needs, and each is covered by test vectors.

Nothing here touches a socket or a clock; a :class:`HandshakeState` is fed
messages and returns messages.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions
from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import DecryptionError, HandshakeError, InvalidInput, ProtocolError

DH_LEN = 32
KEY_LEN = 32
TAG_LEN = 16
MAX_MESSAGE_LEN = 65535
# Noise reserves nonce 2^64 - 1; the last usable one is 2^64 - 2.
MAX_NONCE = 2**64 - 1

_NONCE = struct.Struct("<4xQ")
_ZERO_DH = bytes(DH_LEN)


@dataclass(frozen=True)
class HashFunction:
    """A Noise hash function: its name in protocol names, output and block length."""

    name: str
    hash_len: int
    block_len: int
    constructor: Callable[..., Any] = field(repr=False)

    def hash(self, data: Buffer) -> bytes:
        digest: bytes = self.constructor(data).digest()
        return digest

    def hmac(self, key: bytes, data: Buffer) -> bytes:
        return hmac.new(key, data, self.constructor).digest()

    def hkdf(self, chaining_key: bytes, input_key_material: Buffer, outputs: int) -> tuple[bytes, ...]:
        """Noise's HKDF: two or three outputs of ``hash_len`` bytes each."""
        temp_key = self.hmac(chaining_key, input_key_material)
        out1 = self.hmac(temp_key, b"\x01")
        out2 = self.hmac(temp_key, out1 + b"\x02")
        if outputs == 2:
            return out1, out2
        return out1, out2, self.hmac(temp_key, out2 + b"\x03")


BLAKE2B = HashFunction("BLAKE2b", 64, 128, hashlib.blake2b)
SHA256 = HashFunction("SHA256", 32, 64, hashlib.sha256)
HASH_FUNCTIONS = {h.name: h for h in (BLAKE2B, SHA256)}

# Message patterns without pre-messages, as token lists, one per message.
PATTERNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "NN": (("e",), ("e", "ee")),
    "XX": (("e",), ("e", "ee", "s", "es"), ("s", "se")),
}


@dataclass(frozen=True)
class X25519KeyPair:
    """A Curve25519 keypair for Noise's DH."""

    private: bytes = field(repr=False)
    public: bytes

    @classmethod
    def generate(cls) -> X25519KeyPair:
        return cls.from_private(secrets.token_bytes(DH_LEN))

    @classmethod
    def from_private(cls, private: Buffer) -> X25519KeyPair:
        private = bytes(private)
        if len(private) != DH_LEN:
            raise InvalidInput(f"an X25519 private key is {DH_LEN} bytes, got {len(private)}")
        return cls(private, nacl.bindings.crypto_scalarmult_base(private))


def dh(private: bytes, public: bytes) -> bytes:
    """X25519; an all-zero result (a small-order public key) is a :class:`HandshakeError`."""
    try:
        shared: bytes = nacl.bindings.crypto_scalarmult(private, public)
    except nacl.exceptions.CryptoError as exc:
        # libsodium refuses an all-zero output itself and pynacl reports it as an error.
        raise HandshakeError("X25519 produced the all-zero output (small-order public key)") from exc
    if hmac.compare_digest(shared, _ZERO_DH):
        raise HandshakeError("X25519 produced the all-zero output (small-order public key)")
    return shared


class CipherState:
    """A ChaChaPoly key with its counter nonce (Noise §5.1).

    Before a key is set, encryption is the identity, as Noise specifies for the
    first handshake messages.
    """

    __slots__ = ("key", "nonce")

    def __init__(self, key: bytes | None = None, nonce: int = 0) -> None:
        if key is not None and len(key) != KEY_LEN:
            raise InvalidInput(f"a ChaChaPoly key is {KEY_LEN} bytes, got {len(key)}")
        self.key = key
        self.nonce = nonce

    def has_key(self) -> bool:
        return self.key is not None

    def encrypt_with_ad(self, ad: Buffer, plaintext: Buffer) -> bytes:
        if self.key is None:
            return bytes(plaintext)
        if self.nonce >= MAX_NONCE:
            raise ProtocolError("nonce space exhausted: this session must not send any more")
        sealed = _core.chacha20poly1305_encrypt(self.key, _NONCE.pack(self.nonce), plaintext, ad)
        self.nonce += 1
        return sealed

    def encrypt_parts_with_ad(self, ad: Buffer, parts: Sequence[Buffer], prefix: Buffer = b"") -> bytes:
        """``prefix ‖`` :meth:`encrypt_with_ad` of the concatenation of ``parts``, in one buffer."""
        if self.key is None:
            return b"".join((prefix, *parts))
        if self.nonce >= MAX_NONCE:
            raise ProtocolError("nonce space exhausted: this session must not send any more")
        sealed = _core.chacha20poly1305_encrypt_parts(self.key, _NONCE.pack(self.nonce), parts, ad, prefix)
        self.nonce += 1
        return sealed

    def decrypt_with_ad(self, ad: Buffer, ciphertext: Buffer) -> bytes:
        """Open ``ciphertext``; the nonce advances only on success. Raises :class:`DecryptionError`."""
        if self.key is None:
            return bytes(ciphertext)
        if self.nonce >= MAX_NONCE:
            raise DecryptionError("nonce space exhausted: no more messages can be opened")
        opened = _core.chacha20poly1305_decrypt(self.key, _NONCE.pack(self.nonce), ciphertext, ad)
        self.nonce += 1
        return opened

    def decrypt_parts_with_ad(self, ad: Buffer, parts: Sequence[Buffer]) -> bytes:
        """:meth:`decrypt_with_ad` of the concatenation of ``parts`` (a frame that came in pieces)."""
        if self.key is None:
            return b"".join(parts)
        if self.nonce >= MAX_NONCE:
            raise DecryptionError("nonce space exhausted: no more messages can be opened")
        opened = _core.chacha20poly1305_decrypt_parts(self.key, _NONCE.pack(self.nonce), parts, ad)
        self.nonce += 1
        return opened


class SymmetricState:
    """The chaining key, the handshake hash and the current cipher (Noise §5.2)."""

    __slots__ = ("_hash", "chaining_key", "cipher", "handshake_hash")

    def __init__(self, protocol_name: bytes, hash_function: HashFunction) -> None:
        self._hash = hash_function
        if len(protocol_name) <= hash_function.hash_len:
            h = protocol_name.ljust(hash_function.hash_len, b"\x00")
        else:
            h = hash_function.hash(protocol_name)
        self.handshake_hash = h
        self.chaining_key = h
        self.cipher = CipherState()

    def _cipher_key(self, output: bytes) -> bytes:
        # With a 64-byte hash, keys are the first 32 bytes of an HKDF output.
        return output[:KEY_LEN]

    def mix_key(self, input_key_material: Buffer) -> None:
        self.chaining_key, temp_key = self._hash.hkdf(self.chaining_key, input_key_material, 2)
        self.cipher = CipherState(self._cipher_key(temp_key))

    def mix_hash(self, data: Buffer) -> None:
        self.handshake_hash = self._hash.hash(self.handshake_hash + bytes(data))

    def encrypt_and_hash(self, plaintext: Buffer) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.handshake_hash, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: Buffer) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.handshake_hash, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """The two transport ciphers: initiator-to-responder, then responder-to-initiator."""
        temp_key1, temp_key2 = self._hash.hkdf(self.chaining_key, b"", 2)
        return CipherState(self._cipher_key(temp_key1)), CipherState(self._cipher_key(temp_key2))


def parse_protocol_name(protocol_name: str) -> tuple[str, HashFunction]:
    """The pattern and hash of ``Noise_<pattern>_25519_ChaChaPoly_<hash>``."""
    parts = protocol_name.split("_")
    if len(parts) != 5 or parts[0] != "Noise" or parts[2] != "25519" or parts[3] != "ChaChaPoly":
        raise InvalidInput(f"unsupported Noise protocol {protocol_name!r}")
    if parts[1] not in PATTERNS or parts[4] not in HASH_FUNCTIONS:
        raise InvalidInput(f"unsupported Noise pattern or hash in {protocol_name!r}")
    return parts[1], HASH_FUNCTIONS[parts[4]]


class HandshakeState:
    """One side of a Noise handshake (Noise §5.3), driven message by message.

    Call :meth:`write_message` and :meth:`read_message` in the pattern's order
    (the initiator writes first). When :attr:`complete` is true,
    :meth:`split` gives this side's ``(send, receive)`` transport ciphers. Any
    failure raises :class:`HandshakeError` and leaves the state unusable.
    """

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: Buffer = b"",
        static: X25519KeyPair | None = None,
        ephemeral: X25519KeyPair | None = None,
    ) -> None:
        pattern_name, hash_function = parse_protocol_name(protocol_name)
        self._messages = PATTERNS[pattern_name]
        if static is None and any("s" in m for m in self._messages):
            raise InvalidInput(f"pattern {pattern_name} needs a static keypair")
        self.initiator = initiator
        self._symmetric = SymmetricState(protocol_name.encode("ascii"), hash_function)
        self._symmetric.mix_hash(prologue)
        self._s = static
        # A fixed ephemeral is only for test vectors; normally a fresh one is made when needed.
        self._e = ephemeral
        self._rs: bytes | None = None
        self._re: bytes | None = None
        self._index = 0
        self._failed = False
        self._transport: tuple[CipherState, CipherState] | None = None

    @property
    def complete(self) -> bool:
        return self._transport is not None

    @property
    def handshake_hash(self) -> bytes:
        """The handshake hash ``h``; final (and unique to this session) once complete."""
        return self._symmetric.handshake_hash

    @property
    def remote_static(self) -> bytes | None:
        return self._rs

    def is_my_turn_to_write(self) -> bool:
        return not self.complete and (self._index % 2 == 0) == self.initiator

    def split(self) -> tuple[CipherState, CipherState]:
        """This side's ``(send, receive)`` transport ciphers; only once complete."""
        if self._transport is None:
            raise HandshakeError("the handshake is not complete")
        initiator_to_responder, responder_to_initiator = self._transport
        if self.initiator:
            return initiator_to_responder, responder_to_initiator
        return responder_to_initiator, initiator_to_responder

    def _check_usable(self, writing: bool) -> None:
        if self._failed:
            raise HandshakeError("the handshake already failed")
        if self.complete:
            raise HandshakeError("the handshake is already complete")
        if self.is_my_turn_to_write() != writing:
            raise HandshakeError("handshake message out of order")

    def _dh_token(self, token: str) -> None:
        # Noise names DH tokens from the initiator's point of view: "es" is the
        # initiator's ephemeral with the responder's static, whoever computes it.
        first, second = token[0], token[1]
        if not self.initiator:
            first, second = second, first
        local = self._e if first == "e" else self._s
        remote = self._re if second == "e" else self._rs
        if local is None or remote is None:
            raise HandshakeError(f"DH token {token!r} before its keys are known")
        self._symmetric.mix_key(dh(local.private, remote))

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._messages):
            self._transport = self._symmetric.split()

    def write_message(self, payload: Buffer = b"") -> bytes:
        """The next handshake message, carrying ``payload`` (encrypted once a key exists)."""
        self._check_usable(writing=True)
        try:
            out = bytearray()
            for token in self._messages[self._index]:
                if token == "e":
                    if self._e is None:
                        self._e = X25519KeyPair.generate()
                    out += self._e.public
                    self._symmetric.mix_hash(self._e.public)
                elif token == "s":
                    assert self._s is not None
                    out += self._symmetric.encrypt_and_hash(self._s.public)
                else:
                    self._dh_token(token)
            out += self._symmetric.encrypt_and_hash(payload)
            if len(out) > MAX_MESSAGE_LEN:
                raise InvalidInput(f"handshake message of {len(out)} bytes exceeds {MAX_MESSAGE_LEN}")
        except BaseException:
            self._failed = True
            raise
        self._advance()
        return bytes(out)

    def read_message(self, message: Buffer) -> bytes:
        """Process the peer's next handshake message and return its payload."""
        self._check_usable(writing=False)
        view = memoryview(message).cast("B")
        try:
            if len(view) > MAX_MESSAGE_LEN:
                raise HandshakeError(f"handshake message of {len(view)} bytes exceeds {MAX_MESSAGE_LEN}")
            pos = 0
            for token in self._messages[self._index]:
                if token == "e":
                    if len(view) - pos < DH_LEN:
                        raise HandshakeError("handshake message too short for an ephemeral key")
                    self._re = bytes(view[pos : pos + DH_LEN])
                    pos += DH_LEN
                    self._symmetric.mix_hash(self._re)
                elif token == "s":
                    size = DH_LEN + (TAG_LEN if self._symmetric.cipher.has_key() else 0)
                    if len(view) - pos < size:
                        raise HandshakeError("handshake message too short for a static key")
                    self._rs = self._symmetric.decrypt_and_hash(view[pos : pos + size])
                    pos += size
                else:
                    self._dh_token(token)
            if self._symmetric.cipher.has_key() and len(view) - pos < TAG_LEN:
                raise HandshakeError("handshake message too short for its payload tag")
            payload = self._symmetric.decrypt_and_hash(view[pos:])
        except DecryptionError as exc:
            self._failed = True
            raise HandshakeError("handshake message does not authenticate") from exc
        except BaseException:
            self._failed = True
            raise
        self._advance()
        return payload


__all__ = [
    "BLAKE2B",
    "DH_LEN",
    "MAX_MESSAGE_LEN",
    "MAX_NONCE",
    "PATTERNS",
    "SHA256",
    "CipherState",
    "HandshakeState",
    "HashFunction",
    "SymmetricState",
    "X25519KeyPair",
    "dh",
    "parse_protocol_name",
]
