"""The Noise XX handshake (net/handshake.py, net/noise.py): each message as it arrives, and the payloads.

Mode byte, then:

0. message 1 (``-> e``) to a responder;
1. message 2 (``<- e, ee, s, es`` + payload) to an initiator that sent a real message 1;
2. message 3 (``-> s, se`` + payload) to a responder that got a real message 1;
3. a *valid* message 2 around a fuzzed payload (the fuzzer cannot forge the AEAD, so this
   is how its bytes reach the payload decoder and the identity checks);
4. the same for message 3;
5. the payload decoder alone (a decoded payload must encode back to its bytes).

Ephemeral keys are fixed, so every seed stays valid. Refusal: ``HandshakeError``
(and ``DecodeError`` from the payload decoder alone).
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import keypair, mode
from fuzz.harness import Target
from hyphal.errors import DecodeError, HandshakeError
from hyphal.net.handshake import (
    PROLOGUE,
    PROTOCOL_NAME,
    Handshake,
    HandshakePayload,
    static_keypair,
)
from hyphal.net.noise import HandshakeState, X25519KeyPair

INITIATOR = keypair(1)
RESPONDER = keypair(2)
E_INITIATOR = X25519KeyPair.from_private(bytes([11]) * 32)
E_RESPONDER = X25519KeyPair.from_private(bytes([12]) * 32)


def _initiator() -> Handshake:
    return Handshake(INITIATOR, initiator=True, ephemeral=E_INITIATOR, user_data=b"caps")


def _responder() -> Handshake:
    return Handshake(RESPONDER, initiator=False, ephemeral=E_RESPONDER)


def _raw(initiator: bool, keys: X25519KeyPair, identity_n: int) -> HandshakeState:
    """A bare Noise side: it writes whatever payload it is given."""
    return HandshakeState(
        PROTOCOL_NAME,
        initiator=initiator,
        prologue=PROLOGUE,
        static=static_keypair(INITIATOR if identity_n == 1 else RESPONDER),
        ephemeral=keys,
    )


def run(data: bytes) -> None:
    kind, data = mode(data, 6)
    if kind == 0:
        _responder().receive(data)
    elif kind == 1:
        initiator = _initiator()
        initiator.start()
        initiator.receive(data)
    elif kind == 2:
        responder = _responder()
        responder.receive(_initiator().start())
        responder.receive(data)
    elif kind == 3:
        initiator = _initiator()
        bare = _raw(False, E_RESPONDER, 2)
        bare.read_message(initiator.start())
        initiator.receive(bare.write_message(data))
    elif kind == 4:
        responder = _responder()
        bare = _raw(True, E_INITIATOR, 1)
        reply = responder.receive(bare.write_message(b""))
        assert reply is not None
        bare.read_message(reply)
        responder.receive(bare.write_message(data))
        assert responder.complete, "a valid message 3 did not complete the handshake"
    else:
        payload = HandshakePayload.decode(data)
        assert payload.encode() == data, "a handshake payload decoded from a non-canonical encoding"


def seeds() -> Iterator[bytes]:
    initiator, responder = _initiator(), _responder()
    m1 = initiator.start()
    m2 = responder.receive(m1)
    assert m2 is not None
    m3 = initiator.receive(m2)
    assert m3 is not None
    yield b"\x00" + m1
    yield b"\x01" + m2
    yield b"\x02" + m3
    for payload in (
        HandshakePayload(RESPONDER.public_key),
        HandshakePayload(RESPONDER.public_key, 65536, b"user data"),
    ):
        yield b"\x03" + payload.encode()
        yield b"\x05" + payload.encode()
    yield b"\x04" + HandshakePayload(INITIATOR.public_key, user_data=b"caps").encode()


TARGET = Target("handshake", run, (HandshakeError, DecodeError), seeds)
