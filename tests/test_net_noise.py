"""Noise framework and the hyphal handshake: cacophony vectors, tampering, identity binding."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.errors import HandshakeError, HyphalError, InvalidInput
from hyphal.net.handshake import (
    PROLOGUE,
    PROTOCOL_NAME,
    Handshake,
    HandshakePayload,
    static_keypair,
    static_public_key,
)
from hyphal.net.noise import (
    BLAKE2B,
    SHA256,
    CipherState,
    HandshakeState,
    X25519KeyPair,
    dh,
    parse_protocol_name,
)
from hyphal.signing import KeyPair

VECTORS = json.loads((Path(__file__).parent / "vectors" / "noise_cacophony.json").read_text())["vectors"]


def _keypair(vector: dict[str, Any], name: str) -> X25519KeyPair | None:
    return X25519KeyPair.from_private(bytes.fromhex(vector[name])) if name in vector else None


def _states(vector: dict[str, Any]) -> tuple[HandshakeState, HandshakeState]:
    initiator = HandshakeState(
        vector["protocol_name"],
        initiator=True,
        prologue=bytes.fromhex(vector["init_prologue"]),
        static=_keypair(vector, "init_static"),
        ephemeral=_keypair(vector, "init_ephemeral"),
    )
    responder = HandshakeState(
        vector["protocol_name"],
        initiator=False,
        prologue=bytes.fromhex(vector["resp_prologue"]),
        static=_keypair(vector, "resp_static"),
        ephemeral=_keypair(vector, "resp_ephemeral"),
    )
    return initiator, responder


def test_the_vector_file_covers_every_suite_we_claim() -> None:
    names = {v["protocol_name"] for v in VECTORS}
    assert names == {
        "Noise_NN_25519_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_ChaChaPoly_SHA256",
    }


@pytest.mark.parametrize("vector", VECTORS, ids=[v["protocol_name"] for v in VECTORS])
def test_cacophony_vector(vector: dict[str, Any]) -> None:
    initiator, responder = _states(vector)
    checked_transport = 0
    for index, message in enumerate(vector["messages"]):
        payload = bytes.fromhex(message["payload"])
        expected = bytes.fromhex(message["ciphertext"])
        # Even messages go initiator -> responder, odd ones back.
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        if not sender.complete:
            assert sender.write_message(payload) == expected
            assert receiver.read_message(expected) == payload
        else:
            assert sender.split()[0].encrypt_with_ad(b"", payload) == expected
            assert receiver.split()[1].decrypt_with_ad(b"", expected) == payload
            checked_transport += 1
        if (index == 1 and vector["protocol_name"].startswith("Noise_NN")) or index == 2:
            expected_hash = bytes.fromhex(vector["handshake_hash"])
            assert initiator.handshake_hash == expected_hash
            assert responder.handshake_hash == expected_hash
    assert initiator.complete
    assert responder.complete
    assert checked_transport >= 3


def test_hash_functions_match_hashlib_hmac() -> None:
    # The HKDF chain is what the vectors exercise; this pins the building blocks.
    assert BLAKE2B.hash_len == 64
    assert BLAKE2B.block_len == 128
    assert SHA256.hash_len == 32
    assert SHA256.block_len == 64
    out = SHA256.hkdf(b"k" * 32, b"ikm", 3)
    assert len(out) == 3
    assert len(set(out)) == 3
    assert all(len(o) == 32 for o in out)


def test_parse_protocol_name() -> None:
    assert parse_protocol_name(PROTOCOL_NAME) == ("XX", BLAKE2B)
    for bad in ("Noise_IK_25519_ChaChaPoly_BLAKE2b", "Noise_XX_448_ChaChaPoly_BLAKE2b", "nonsense"):
        with pytest.raises(InvalidInput):
            parse_protocol_name(bad)


def _xx_pair() -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState(PROTOCOL_NAME, initiator=True, static=X25519KeyPair.generate()),
        HandshakeState(PROTOCOL_NAME, initiator=False, static=X25519KeyPair.generate()),
    )


@pytest.mark.parametrize("message_index", [1, 2])
def test_tampered_handshake_message_is_rejected(message_index: int) -> None:
    for position in (0, 40, -1):
        initiator, responder = _xx_pair()
        messages = [initiator.write_message(b"")]
        responder.read_message(messages[0])
        messages.append(responder.write_message(b"hello"))
        if message_index == 1:
            tampered = bytearray(messages[1])
            tampered[position] ^= 1
            with pytest.raises(HandshakeError):
                initiator.read_message(bytes(tampered))
            # A failed state stays failed.
            with pytest.raises(HandshakeError):
                initiator.read_message(messages[1])
            continue
        initiator.read_message(messages[1])
        tampered = bytearray(initiator.write_message(b"x"))
        tampered[position] ^= 1
        with pytest.raises(HandshakeError):
            responder.read_message(bytes(tampered))


def test_truncated_and_out_of_order_messages() -> None:
    initiator, responder = _xx_pair()
    with pytest.raises(HandshakeError):
        initiator.read_message(b"")  # the initiator writes first
    first = initiator.write_message(b"")
    with pytest.raises(HandshakeError):
        responder.read_message(first[:31])
    initiator, responder = _xx_pair()
    responder.read_message(initiator.write_message(b""))
    second = responder.write_message(b"")
    with pytest.raises(HandshakeError):
        initiator.read_message(second[:60])


def test_small_order_point_is_rejected() -> None:
    private = X25519KeyPair.generate().private
    for point in (bytes(32), (1).to_bytes(32, "little")):
        with pytest.raises(HandshakeError):
            dh(private, point)
    # Injected as the peer's ephemeral it kills the handshake at the first DH.
    responder = HandshakeState(PROTOCOL_NAME, initiator=False, static=X25519KeyPair.generate())
    responder.read_message(bytes(32))
    with pytest.raises(HandshakeError):
        responder.write_message(b"")


def test_cipher_state_refuses_the_reserved_nonce() -> None:
    cipher = CipherState(b"k" * 32, nonce=2**64 - 2)
    cipher.encrypt_with_ad(b"", b"last")
    with pytest.raises(HyphalError):
        cipher.encrypt_with_ad(b"", b"one too many")


# -- the hyphal handshake ---------------------------------------------------------


def _run(initiator: Handshake, responder: Handshake) -> None:
    message: bytes | None = initiator.start()
    receiver, sender = responder, initiator
    while message is not None:
        message = receiver.receive(message)
        receiver, sender = sender, receiver
    assert initiator.complete
    assert responder.complete


def test_handshake_binds_identities_and_keys() -> None:
    alice, bob = KeyPair.generate(), KeyPair.generate()
    initiator = Handshake(alice, initiator=True, expected_remote=bob.public_key, user_data=b"caps:a")
    responder = Handshake(bob, initiator=False, user_data=b"caps:b", max_frame=65536)
    _run(initiator, responder)
    a, b = initiator.result, responder.result
    assert a.remote_public_key == bob.public_key
    assert b.remote_public_key == alice.public_key
    assert a.handshake_hash == b.handshake_hash
    assert len(a.handshake_hash) == 64
    assert a.is_initiator
    assert not b.is_initiator
    assert a.send_key == b.receive_key
    assert a.receive_key == b.send_key
    assert a.send_key != a.receive_key
    assert a.remote_user_data == b"caps:b"
    assert b.remote_user_data == b"caps:a"
    assert a.remote_max_frame == 65536
    assert "send_cipher" not in repr(a)


def test_static_key_is_libsodium_conversion_of_the_identity() -> None:
    identity = KeyPair.generate()
    static = static_keypair(identity)
    assert static.public == nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(identity.public_key)
    assert static_public_key(identity.public_key) == static.public


def test_unexpected_remote_is_rejected() -> None:
    alice, bob, carol = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    initiator = Handshake(alice, initiator=True, expected_remote=carol.public_key)
    responder = Handshake(bob, initiator=False)
    with pytest.raises(HandshakeError, match="expected peer"):
        _run(initiator, responder)


class _Impostor(Handshake):
    """Claims ``claimed`` as its identity while its Noise static key is its own."""

    def __init__(self, keypair: KeyPair, claimed: bytes, *, initiator: bool) -> None:
        super().__init__(keypair, initiator=initiator)
        self._payload = HandshakePayload(claimed).encode()


@pytest.mark.parametrize("impostor_initiates", [True, False])
def test_identity_not_matching_the_static_key_is_rejected(impostor_initiates: bool) -> None:
    mallory, victim, honest = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    impostor = _Impostor(mallory, victim.public_key, initiator=impostor_initiates)
    other = Handshake(honest, initiator=not impostor_initiates)
    initiator, responder = (impostor, other) if impostor_initiates else (other, impostor)
    with pytest.raises(HandshakeError, match="does not match"):
        _run(initiator, responder)


def test_invalid_identity_point_is_rejected() -> None:
    with pytest.raises(HandshakeError):
        static_public_key(bytes(32))  # small order: libsodium refuses to convert


def test_payload_in_first_message_is_rejected() -> None:
    state = HandshakeState(PROTOCOL_NAME, initiator=True, prologue=PROLOGUE, static=X25519KeyPair.generate())
    responder = Handshake(KeyPair.generate(), initiator=False)
    with pytest.raises(HandshakeError, match="payload"):
        responder.receive(state.write_message(b"surprise"))


def test_payload_encoding_round_trip_and_strictness() -> None:
    payload = HandshakePayload(b"p" * 32, 65536, b"user")
    assert HandshakePayload.decode(payload.encode()) == payload
    encoded = payload.encode()
    for bad in (encoded[:-1], encoded + b"x", b"\x02" + encoded[1:], encoded[:20]):
        with pytest.raises(HyphalError):
            HandshakePayload.decode(bad)


@given(st.binary(max_size=300))
def test_payload_decoder_raises_only_hyphal_errors(data: bytes) -> None:
    with contextlib.suppress(HyphalError):
        HandshakePayload.decode(data)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_handshake_fed_garbage_raises_only_handshake_errors(first: bytes, third: bytes) -> None:
    responder = Handshake(KeyPair.generate(), initiator=False)
    try:
        responder.receive(first)
        responder.receive(third)
    except HandshakeError:
        return
    pytest.fail("garbage completed a handshake")
