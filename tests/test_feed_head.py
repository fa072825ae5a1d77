"""Signed heads: encoding, decoding, M-of-N verification (docs/PROTOCOL.md §9)."""

from __future__ import annotations

import struct

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import KeyPair, _core, errors
from hyphal.feed.head import (
    HeadSignature,
    SignedHead,
    can_sign,
    keypair_signer,
    verify_quorum,
)
from hyphal.feed.manifest import Manifest
from hyphal.signing import namespaced_message, require_signature

PAIRS = [KeyPair(bytes([i]) * 32) for i in range(1, 5)]
TREE_HASH = _core.blake3(b"some tree")


def two_of_three() -> Manifest:
    return Manifest(tuple(k.public_key for k in PAIRS[:3]), quorum=2)


def signed(manifest: Manifest, signers: list[int], length: int = 7, fork: int = 1) -> SignedHead:
    message = _core.head_signable(manifest.key, TREE_HASH, length, fork)
    sigs = tuple(HeadSignature(i, PAIRS[i].sign(message)) for i in sorted(signers))
    return SignedHead(length, fork, TREE_HASH, sigs)


def test_encoding_is_the_documented_layout() -> None:
    m = two_of_three()
    head = signed(m, [0, 2])
    sig0, sig2 = head.signatures[0].signature, head.signatures[1].signature
    expected = struct.pack("<BQQ32sB", 1, 7, 1, TREE_HASH, 2) + b"\x00" + sig0 + b"\x02" + sig2
    assert head.encode() == expected
    assert len(expected) == 50 + 2 * 65
    assert SignedHead.decode(expected) == head


def test_signatures_are_over_the_protocol_signable_and_verify_in_pynacl() -> None:
    m = Manifest.single(PAIRS[0].public_key)
    head = SignedHead.sign(m.key, TREE_HASH, 3, 0, keypair_signer(m, [PAIRS[0]]))
    signable = _core.FEED_HEAD_NAMESPACE + m.key + TREE_HASH + struct.pack("<QQ", 3, 0)
    assert head.signable(m.key) == signable
    assert len(signable) == 112
    nacl.signing.VerifyKey(PAIRS[0].public_key).verify(signable, head.signatures[0].signature)
    head.verify(m)


@pytest.mark.parametrize("signers", [[0, 1], [0, 2], [1, 2], [0, 1, 2]])
def test_a_quorum_of_distinct_signers_verifies(signers: list[int]) -> None:
    m = two_of_three()
    head = signed(m, signers)
    head.verify(m)
    assert SignedHead.decode_verified(head.encode(), m) == head


def test_below_quorum_is_refused() -> None:
    m = two_of_three()
    with pytest.raises(errors.SignatureError):
        signed(m, [1]).verify(m)


def test_a_signer_outside_the_manifest_is_refused() -> None:
    m = two_of_three()
    message = _core.head_signable(m.key, TREE_HASH, 7, 1)
    head = SignedHead(
        7, 1, TREE_HASH, (HeadSignature(0, PAIRS[0].sign(message)), HeadSignature(3, PAIRS[3].sign(message)))
    )
    with pytest.raises(errors.SignatureError):
        head.verify(m)


def test_a_signature_under_the_wrong_index_is_refused() -> None:
    m = two_of_three()
    good = signed(m, [0, 1])
    swapped = SignedHead(
        7,
        1,
        TREE_HASH,
        (HeadSignature(0, good.signatures[1].signature), HeadSignature(1, good.signatures[0].signature)),
    )
    with pytest.raises(errors.SignatureError):
        swapped.verify(m)


def test_one_bad_signature_among_a_quorum_is_refused() -> None:
    m = two_of_three()
    good = signed(m, [0, 1, 2])
    bad = bytearray(good.signatures[2].signature)
    bad[0] ^= 1
    head = SignedHead(7, 1, TREE_HASH, (*good.signatures[:2], HeadSignature(2, bytes(bad))))
    with pytest.raises(errors.SignatureError):
        head.verify(m)


@pytest.mark.parametrize("field", ["length", "fork", "tree_hash", "feed"])
def test_changing_any_signed_field_breaks_the_signature(field: str) -> None:
    m = two_of_three()
    head = signed(m, [0, 1])
    changed = {
        "length": SignedHead(8, 1, TREE_HASH, head.signatures),
        "fork": SignedHead(7, 2, TREE_HASH, head.signatures),
        "tree_hash": SignedHead(7, 1, bytes(32), head.signatures),
        "feed": head,
    }[field]
    manifest = Manifest(m.signers, quorum=2, label=b"other") if field == "feed" else m
    with pytest.raises(errors.SignatureError):
        changed.verify(manifest)


def test_verify_quorum_refuses_a_repeated_signer() -> None:
    m = two_of_three()
    message = b"m"
    sig = HeadSignature(0, PAIRS[0].sign(message))
    with pytest.raises(errors.SignatureError):
        verify_quorum(m, message, [sig, sig])


def test_keypair_signer_needs_a_quorum() -> None:
    m = two_of_three()
    assert not can_sign(m, [PAIRS[0], PAIRS[3]])
    assert can_sign(m, [PAIRS[2], PAIRS[0]])
    with pytest.raises(errors.InvalidInput):
        keypair_signer(m, [PAIRS[0], PAIRS[0], PAIRS[3]])
    sigs = keypair_signer(m, [PAIRS[2], PAIRS[0], PAIRS[1]])(b"msg")
    assert [s.signer for s in sigs] == [0, 1]


def test_shared_helpers() -> None:
    ns = bytes(range(32))
    assert namespaced_message(ns, b"a", b"bc") == ns + b"abc"
    with pytest.raises(errors.InvalidInput):
        namespaced_message(b"short", b"a")
    require_signature(PAIRS[0].public_key, b"hi", PAIRS[0].sign(b"hi"))
    with pytest.raises(errors.SignatureError):
        require_signature(PAIRS[0].public_key, b"hi", PAIRS[1].sign(b"hi"))
    with pytest.raises(errors.SignatureError):
        require_signature(PAIRS[0].public_key, b"hi", b"\x00" * 10)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:49],  # shorter than the header
        lambda b: b"\x02" + b[1:],  # version
        lambda b: b[:49] + b"\x00",  # no signatures
        lambda b: b[:-1],  # truncated signature
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b[:49] + b"\x03" + b[50:],  # count larger than what follows
        lambda b: b[:1] + struct.pack("<Q", 2**62 + 1) + b[9:],  # length above 2^62
        lambda b: b[:50] + b"\x01" + b[51:115] + b"\x00" + b[116:],  # indexes not increasing
        lambda b: b[:50] + b"\x00" + b[51:115] + b"\x00" + b[116:],  # repeated index
    ],
)
def test_malformed_heads_are_decode_errors(mutate: object) -> None:
    encoded = signed(two_of_three(), [0, 1]).encode()
    assert callable(mutate)
    with pytest.raises(errors.DecodeError):
        SignedHead.decode(mutate(encoded))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        head = SignedHead.decode(data)
    except errors.DecodeError:
        return
    assert head.encode() == data


@given(st.binary(min_size=50, max_size=50), st.lists(st.binary(min_size=65, max_size=65), max_size=3))
def test_well_framed_garbage_only_raises_hyphal_errors(header: bytes, entries: list[bytes]) -> None:
    m = two_of_three()
    data = header[:49] + bytes((len(entries),)) + b"".join(entries)
    data = b"\x01" + data[1:]
    try:
        SignedHead.decode_verified(data, m)
    except (errors.DecodeError, errors.SignatureError):
        return
    raise AssertionError("garbage verified")


def test_invalid_heads_cannot_be_built() -> None:
    sig = HeadSignature(0, bytes(64))
    for args in [
        (-1, 0, TREE_HASH, (sig,)),
        (0, 2**64, TREE_HASH, (sig,)),
        (0, 0, b"x", (sig,)),
        (0, 0, TREE_HASH, ()),
    ]:
        with pytest.raises(errors.InvalidInput):
            SignedHead(*args)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput):
        HeadSignature(256, bytes(64))
    with pytest.raises(errors.InvalidInput):
        HeadSignature(0, bytes(63))
