"""ed25519 (PROTOCOL.md §5): interoperability with pynacl and strict verification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey as NaclSigningKey
from nacl.signing import VerifyKey as NaclVerifyKey

import hyphal
from hyphal import _core
from hyphal.signing import KeyPair, require_valid, verify, verify_batch

# -- a tiny, slow edwards25519 (affine coordinates) to build forgeries ---------------
# Only used to construct test inputs and to prove that each forged signature passes
# the plain cofactorless equation [s]B == R + [k]A, so that nothing but the strict
# checks of §5 can reject it.

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int]
IDENTITY: Point = (0, 1)


def _add(p1: Point, p2: Point) -> Point:
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return (x3, y3)


def _mul(k: int, p: Point) -> Point:
    acc = IDENTITY
    while k:
        if k & 1:
            acc = _add(acc, p)
        p = _add(p, p)
        k >>= 1
    return acc


def _decode(enc: bytes) -> Point:
    v = int.from_bytes(enc, "little")
    y, sign = v & ((1 << 255) - 1), v >> 255
    assert y < P
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    assert (x * x - x2) % P == 0, "not on the curve"
    if x & 1 != sign:
        x = P - x
    return (x % P, y)


def _encode(p: Point) -> bytes:
    x, y = p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


BASE = _decode(bytes([0x58]) + bytes([0x66]) * 31)
assert _mul(L, BASE) == IDENTITY


def _k(r: bytes, a: bytes, m: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + m).digest(), "little") % L


def _cofactorless_ok(pk: bytes, msg: bytes, sig: bytes) -> bool:
    """The bare equation, with none of the strict checks (s reduced mod L)."""
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    return _mul(s % L, BASE) == _add(_decode(r), _mul(_k(r, pk, msg), _decode(pk)))


def _secret_scalar(seed: bytes) -> int:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little")


SMALL_ORDER_ENCODINGS = [
    bytes([1]) + bytes(31),  # the identity
    bytes(32),  # (sqrt(-1), 0): order 4
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # (0, -1): order 2
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
]


def _order(p: Point) -> int:
    for h in (1, 2, 4, 8):
        if _mul(h, p) == IDENTITY:
            return h
    raise AssertionError("not a small-order point")


def forge_with_small_order_key(enc: bytes) -> tuple[bytes, bytes, bytes]:
    """(pk, msg, sig) with a small-order pk that passes the cofactorless equation."""
    order = _order(_decode(enc))
    r = _encode(BASE)
    for i in range(1000):
        msg = b"forged %d" % i
        if _k(r, enc, msg) % order == 0:
            sig = r + (1).to_bytes(32, "little")
            assert _cofactorless_ok(enc, msg, sig)
            return enc, msg, sig
    raise AssertionError("no message found")


def forge_with_small_order_r(seed: bytes, msg: bytes) -> tuple[bytes, bytes, bytes]:
    """A signature whose R is the identity, made with the secret scalar: passes cofactorless."""
    pk = NaclSigningKey(seed).verify_key.encode()
    r = bytes([1]) + bytes(31)
    s = _k(r, pk, msg) * _secret_scalar(seed) % L
    sig = r + s.to_bytes(32, "little")
    assert _cofactorless_ok(pk, msg, sig)
    return pk, msg, sig


def non_canonical_s(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:], "little")
    assert s < L
    return sig[:32] + (s + L).to_bytes(32, "little")


def nacl_verifies(pk: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        NaclVerifyKey(pk).verify(msg, sig)
    except (BadSignatureError, ValueError):
        return False
    return True


seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=300)


# -- interoperability -----------------------------------------------------------------


def test_rfc8032_vector_1() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    kp = KeyPair.from_seed(seed)
    assert kp.public_key.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = kp.sign(b"")
    assert sig.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert verify(kp.public_key, b"", sig)


@given(seed=seeds, msg=messages)
def test_keys_and_signatures_match_pynacl(seed: bytes, msg: bytes) -> None:
    ours = KeyPair.from_seed(seed)
    theirs = NaclSigningKey(seed)
    assert ours.public_key == theirs.verify_key.encode()
    assert ours.seed == seed
    assert _core.SigningKey(bytearray(seed)).public_key == ours.public_key
    sig = ours.sign(msg)
    assert len(sig) == 64
    # ed25519 is deterministic: the same signature as libsodium's.
    assert sig == theirs.sign(msg).signature
    assert nacl_verifies(ours.public_key, msg, sig)
    nacl_sig = theirs.sign(msg).signature
    assert verify(ours.public_key, msg, nacl_sig)
    assert verify(memoryview(ours.public_key), bytearray(msg), memoryview(nacl_sig))
    require_valid(ours.public_key, msg, nacl_sig)


def test_generate_and_repr_hide_the_seed() -> None:
    kp = KeyPair.generate()
    assert kp.seed.hex() not in repr(kp)
    assert verify(kp.public_key, b"m", kp.sign(b"m"))
    assert KeyPair.generate().public_key != kp.public_key


@given(seed=seeds, other=seeds, msg=messages, data=st.data())
def test_wrong_message_key_or_signature(seed: bytes, other: bytes, msg: bytes, data: st.DataObject) -> None:
    kp = KeyPair(seed)
    sig = kp.sign(msg)
    assert verify(kp.public_key, msg, sig)
    wrong_msg = data.draw(messages.filter(lambda m: m != msg), label="wrong message")
    assert not verify(kp.public_key, wrong_msg, sig)
    if other != seed:
        assert not verify(KeyPair(other).public_key, msg, sig)
    bit = data.draw(st.integers(0, 511), label="sig bit")
    bad = bytearray(sig)
    bad[bit // 8] ^= 1 << (bit % 8)
    assert not verify(kp.public_key, msg, bytes(bad))
    assert not nacl_verifies(kp.public_key, msg, bytes(bad))
    with pytest.raises(hyphal.SignatureError):
        require_valid(kp.public_key, msg, bytes(bad))


@given(seed=seeds, msg=messages)
def test_non_canonical_s_is_rejected(seed: bytes, msg: bytes) -> None:
    kp = KeyPair(seed)
    sig = kp.sign(msg)
    bad = non_canonical_s(sig)
    assert _cofactorless_ok(kp.public_key, msg, bad)  # a lax verifier would accept it
    assert not nacl_verifies(kp.public_key, msg, bad)
    assert not verify(kp.public_key, msg, bad)


@pytest.mark.parametrize("enc", SMALL_ORDER_ENCODINGS, ids=lambda e: e[:4].hex())
def test_small_order_public_keys_are_rejected(enc: bytes) -> None:
    pk, msg, sig = forge_with_small_order_key(enc)
    assert not nacl_verifies(pk, msg, sig)
    assert not verify(pk, msg, sig)
    # And a real signature under some other key does not help either.
    kp = KeyPair(bytes(32))
    assert not verify(pk, msg, kp.sign(msg))


@settings(max_examples=10)
@given(seed=seeds, msg=messages)
def test_small_order_r_is_rejected(seed: bytes, msg: bytes) -> None:
    pk, msg, sig = forge_with_small_order_r(seed, msg)
    assert not nacl_verifies(pk, msg, sig)
    assert not verify(pk, msg, sig)


# -- batches --------------------------------------------------------------------------


def make_batch(n: int, tag: int = 0) -> tuple[list[bytes], list[bytes], list[bytes]]:
    pks, msgs, sigs = [], [], []
    for i in range(n):
        kp = KeyPair(hashlib.sha256(b"seed %d %d" % (tag, i)).digest())
        msg = b"message %d" % i * (i % 5)
        pks.append(kp.public_key)
        msgs.append(msg)
        sigs.append(kp.sign(msg))
    return pks, msgs, sigs


@pytest.mark.parametrize("n", [1, 2, 3, 64, 256])
def test_batch_of_valid_signatures(n: int) -> None:
    pks, msgs, sigs = make_batch(n)
    assert verify_batch(pks, msgs, sigs)
    assert verify_batch(tuple(pks), tuple(msgs), tuple(sigs))
    assert verify_batch([bytearray(p) for p in pks], [memoryview(m) for m in msgs], sigs)


def test_batch_with_one_key_many_messages() -> None:
    kp = KeyPair(bytes(range(32)))
    msgs = [b"%d" % i for i in range(40)]
    assert verify_batch([kp.public_key] * 40, msgs, [kp.sign(m) for m in msgs])
    same = [b"same"] * 5
    assert verify_batch([kp.public_key] * 5, same, [kp.sign(b"same")] * 5)


BAD_KINDS = ["message", "key", "sig_bit", "non_canonical_s", "small_order_key", "small_order_r", "swap"]


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("n", [1, 2, 64])
@settings(max_examples=8)
@given(data=st.data())
def test_batch_with_one_bad_signature(kind: str, n: int, data: st.DataObject) -> None:
    pks, msgs, sigs = make_batch(n, tag=n)
    i = data.draw(st.integers(0, n - 1), label="bad position")
    if kind == "message":
        msgs[i] = msgs[i] + b"!"
    elif kind == "key":
        pks[i] = KeyPair(b"\x07" * 32).public_key
    elif kind == "sig_bit":
        bit = data.draw(st.integers(0, 511), label="bit")
        b = bytearray(sigs[i])
        b[bit // 8] ^= 1 << (bit % 8)
        sigs[i] = bytes(b)
    elif kind == "non_canonical_s":
        sigs[i] = non_canonical_s(sigs[i])
    elif kind == "small_order_key":
        enc = data.draw(st.sampled_from(SMALL_ORDER_ENCODINGS), label="key")
        pks[i], msgs[i], sigs[i] = forge_with_small_order_key(enc)
    elif kind == "small_order_r":
        pks[i], msgs[i], sigs[i] = forge_with_small_order_r(b"\x09" * 32, msgs[i])
    else:
        if n < 2:
            sigs[i] = sigs[i][32:] + sigs[i][:32]
        else:
            j = (i + 1) % n
            sigs[i], sigs[j] = sigs[j], sigs[i]
    each = [verify(p, m, s) for p, m, s in zip(pks, msgs, sigs, strict=True)]
    assert not all(each)
    assert each == [nacl_verifies(p, m, s) for p, m, s in zip(pks, msgs, sigs, strict=True)]
    assert not verify_batch(pks, msgs, sigs)


@settings(max_examples=20)
@given(
    entries=st.lists(
        st.tuples(seeds, messages, st.sampled_from(["good", "good", "good", "bad_msg", "bad_s", "forged"])),
        min_size=1,
        max_size=12,
    )
)
def test_batch_agrees_with_single_verification(entries: list[tuple[bytes, bytes, str]]) -> None:
    pks, msgs, sigs = [], [], []
    for seed, msg, kind in entries:
        kp = KeyPair(seed)
        sig = kp.sign(msg)
        pk = kp.public_key
        if kind == "bad_msg":
            msg = msg + b"?"
        elif kind == "bad_s":
            sig = non_canonical_s(sig)
        elif kind == "forged":
            pk, msg, sig = forge_with_small_order_key(bytes(32))
        pks.append(pk)
        msgs.append(msg)
        sigs.append(sig)
    each = [verify(p, m, s) for p, m, s in zip(pks, msgs, sigs, strict=True)]
    assert each == [kind == "good" for _, _, kind in entries]
    assert verify_batch(pks, msgs, sigs) == all(each)


@pytest.mark.parametrize(("np", "nm", "ns"), [(2, 1, 1), (1, 2, 1), (1, 1, 2), (0, 1, 1), (3, 3, 2)])
def test_batch_length_mismatch_raises(np: int, nm: int, ns: int) -> None:
    pks, msgs, sigs = make_batch(3)
    with pytest.raises(hyphal.InvalidInput):
        verify_batch(pks[:np], msgs[:nm], sigs[:ns])
