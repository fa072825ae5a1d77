"""Encrypted feeds: blocks sealed at rest and on the wire, the tree over ciphertext."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import blake3
import nacl.bindings
import pytest

from hyphal import KeyPair, errors
from hyphal.feed import Feed, Manifest
from hyphal.feed.encryption import OVERHEAD, BlockCipher, block_nonce, default_read_secret
from hyphal.storage import SqliteStorage

WRITER = KeyPair(b"w" * 32)
SECRET = bytes(range(32))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[SqliteStorage]]:
    opened = [SqliteStorage(tmp_path / f"{i}.db") for i in range(3)]
    yield opened
    for s in opened:
        s.close()


def libsodium_seal(read_secret: bytes, feed_key: bytes, index: int, fork: int, plaintext: bytes) -> bytes:
    """The stored form, computed independently with the blake3 package and libsodium."""
    key = blake3.blake3(
        read_secret + feed_key, derive_key_context="hyphal 2026-11 feed block encryption"
    ).digest()
    nonce = struct.pack("<QQ", index, fork) + bytes(8)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
    return struct.pack("<Q", fork) + sealed


def test_blocks_are_sealed_as_documented(stores: list[SqliteStorage]) -> None:
    feed = Feed.create(stores[0], WRITER, encrypted=True)
    assert feed.encrypted
    assert feed.can_decrypt
    secret = feed.read_secret
    assert (
        secret
        == default_read_secret(WRITER.seed, feed.key)
        == blake3.blake3(
            WRITER.seed + feed.key, derive_key_context="hyphal 2026-11 feed read secret"
        ).digest()
    )
    feed.append_batch([b"secret zero", b"secret one"])
    assert feed.get_stored(1) == libsodium_seal(secret, feed.key, 1, 0, b"secret one")
    assert feed.get_nowait(1) == b"secret one"
    assert (
        feed.byte_length == len(b"secret zero") + len(b"secret one") + 2 * OVERHEAD
    )  # the tree covers ciphertext


def test_nothing_readable_reaches_the_database(stores: list[SqliteStorage], tmp_path: Path) -> None:
    feed = Feed.create(stores[0], WRITER, encrypted=True)
    feed.append_batch([b"PLAINTEXT-MARKER %d" % i for i in range(50)])
    stores[0].close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("0.db"))
    assert b"PLAINTEXT-MARKER" not in raw
    assert SECRET not in raw
    assert feed.read_secret is not None
    assert feed.read_secret not in raw


def test_only_holders_of_the_read_secret_decrypt(stores: list[SqliteStorage]) -> None:
    writer = Feed.create(stores[0], WRITER, encrypted=True, read_secret=SECRET)
    writer.append_batch([b"a", b"b", b"c"])
    # A relay knows the manifest (it must, to check signatures), not the secret.
    relay = Feed.open(stores[1], writer.key, manifest=writer.manifest)
    assert not relay.encrypted
    assert not relay.can_decrypt
    head = writer.head()
    assert head is not None
    relay.apply_remote(head, *writer.proof(3, 0, 3))
    assert relay.get_nowait(2) == writer.get_stored(2)  # it holds and serves ciphertext
    reader = Feed.open(stores[2], writer.key, manifest=writer.manifest, read_secret=SECRET)
    reader.apply_remote(head, *relay.proof(3, 0, 3))
    assert reader.get_nowait(2) == b"c"
    wrong = Feed.open(stores[2], writer.key, read_secret=bytes(32))
    with pytest.raises(errors.DecryptionError):
        wrong.get_nowait(2)
    # The writer's own storage says "encrypted", so opening it without the secret cannot mislead.
    blind = Feed.open(stores[0], writer.key)
    assert blind.encrypted
    assert not blind.can_decrypt
    with pytest.raises(errors.InvalidInput):
        blind.get_nowait(0)


def test_the_writer_rederives_its_secret_on_reopen(stores: list[SqliteStorage]) -> None:
    feed = Feed.create(stores[0], WRITER, encrypted=True)
    feed.append(b"kept")
    again = Feed.open(stores[0], feed.key, keypair=WRITER)
    assert again.can_decrypt
    assert again.get_nowait(0) == b"kept"
    assert again.append(b"more") == 2
    assert feed.read_secret == again.read_secret


def test_a_truncation_never_reuses_a_nonce(stores: list[SqliteStorage]) -> None:
    feed = Feed.create(stores[0], WRITER, encrypted=True)
    feed.append_batch([b"same", b"same", b"same"])
    before = feed.get_stored(2)
    feed.truncate(2)
    feed.append(b"same")
    after = feed.get_stored(2)
    assert before[:8] == struct.pack("<Q", 0)
    assert after[:8] == struct.pack("<Q", 1)
    assert before[8:] != after[8:]
    assert feed.get_nowait(1) == feed.get_nowait(2) == b"same"  # block 1 is still from fork 0


def test_one_secret_gives_each_feed_its_own_key(stores: list[SqliteStorage]) -> None:
    a = Feed.create(stores[0], WRITER, encrypted=True, read_secret=SECRET)
    b = Feed.create(stores[0], WRITER, encrypted=True, read_secret=SECRET, label=b"b")
    a.append(b"x")
    b.append(b"x")
    assert a.get_stored(0) != b.get_stored(0)


def test_block_cipher_refuses_what_it_did_not_seal() -> None:
    key = Manifest.single(WRITER.public_key).key
    cipher = BlockCipher(SECRET, key)
    sealed = cipher.seal(5, 2, b"payload")
    assert cipher.open(5, sealed) == b"payload"
    assert block_nonce(5, 2) == struct.pack("<QQ", 5, 2) + bytes(8)
    for index, data in [(6, sealed), (5, sealed[: OVERHEAD - 1]), (5, sealed[:-1] + bytes([sealed[-1] ^ 1]))]:
        with pytest.raises(errors.DecryptionError):
            cipher.open(index, data)
    with pytest.raises(errors.DecryptionError):
        BlockCipher(bytes(32), key).open(5, sealed)
    with pytest.raises(errors.DecryptionError):
        cipher.open(5, struct.pack("<Q", 3) + sealed[8:])  # the fork prefix picks the nonce
    with pytest.raises(errors.InvalidInput):
        BlockCipher(b"short", key)


def test_option_mistakes_are_refused(stores: list[SqliteStorage]) -> None:
    pairs = [KeyPair(bytes([i]) * 32) for i in range(2)]
    manifest = Manifest(tuple(p.public_key for p in pairs), quorum=2)
    with pytest.raises(errors.InvalidInput):
        Feed.create_multisig(stores[0], manifest, pairs, encrypted=True)
    with pytest.raises(errors.InvalidInput):
        Feed.create(stores[0], WRITER, read_secret=SECRET)
    feed = Feed.create_multisig(stores[0], manifest, pairs, encrypted=True, read_secret=SECRET)
    feed.append(b"m")
    assert Feed.open(stores[0], feed.key, read_secret=SECRET).get_nowait(0) == b"m"
