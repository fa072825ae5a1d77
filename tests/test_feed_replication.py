"""The replication hooks: proofs from stored nodes, apply_remote, apply_truncation.

Nothing a peer sends is stored before it verifies: every refused update
leaves the database exactly as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyphal import KeyPair, _core, errors
from hyphal.feed import Feed, Manifest, SignedHead
from hyphal.merkle import Proof, TreeNode, verify_proof
from hyphal.storage import SqliteStorage

WRITER = KeyPair(b"w" * 32)
OTHER = KeyPair(b"o" * 32)
TABLES = ("feeds", "blocks", "nodes", "bitfield", "signed_values")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Replicas:
    """One writer and readers, each in its own database file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores: list[SqliteStorage] = []
        self.writer = Feed.create(self.store("writer"), WRITER)

    def store(self, name: str) -> SqliteStorage:
        s = SqliteStorage(self.root / f"{name}.db")
        self.stores.append(s)
        return s

    def reader(self, name: str, source: Feed | None = None) -> Feed:
        source = source or self.writer
        return Feed.open(self.store(name), source.key, manifest=source.manifest)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Replicas]:
    r = Replicas(tmp_path)
    yield r
    for s in r.stores:
        s.close()


def blocks(n: int, start: int = 0) -> list[bytes]:
    return [b"block %d" % i for i in range(start, start + n)]


def head_of(feed: Feed) -> SignedHead:
    head = feed.head()
    assert head is not None
    return head


def snapshot(feed: Feed, storage: SqliteStorage) -> object:
    with sqlite3.connect(storage.path) as c:
        rows = tuple(tuple(c.execute(f"SELECT * FROM {t} ORDER BY 1, 2")) for t in TABLES)
    return rows, feed.length, feed.fork, feed.head(), feed.missing(0, 64), feed.tree_hash()


def fetch(src: Feed, dst: Feed, start: int, end: int) -> int:
    """What a replication session does: src proves [start, end) and its head to dst."""
    proof, data = src.proof(src.length, start, end, upgrade_from=dst.length if src.length > dst.length else 0)
    return dst.apply_remote(head_of(src), proof, data)


def test_full_replication(net: Replicas) -> None:
    net.writer.append_batch(blocks(20))
    reader = net.reader("r")
    assert fetch(net.writer, reader, 0, 20) == 20
    assert reader.head() == net.writer.head()
    assert reader.tree_hash() == net.writer.tree_hash()
    assert reader.byte_length == net.writer.byte_length
    assert reader.missing() == []
    assert reader.get_nowait(19) == b"block 19"
    assert not reader.writable


def test_the_sparse_reader_takes_block_10_and_serves_it(net: Replicas) -> None:
    net.writer.append_batch(blocks(16))
    reader = net.reader("sparse")
    fetch(net.writer, reader, 0, 9)  # blocks 0-8 with the head of length 16
    assert (reader.length, reader.missing()) == (16, [(9, 16)])
    proof, data = net.writer.proof(16, 10, 11, upgrade_from=16)  # needs only our roots at 16
    assert reader.apply_remote(head_of(net.writer), proof, data) == 16
    assert reader.missing() == [(9, 10), (11, 16)]
    assert reader.has(10)
    assert not reader.has(9)

    # Later it serves block 10 to a third replica that knows nothing yet...
    served, served_data = reader.proof(16, 10, 11)
    assert served_data == [b"block 10"]
    verify_proof(served, served_data, head_of(reader).tree_hash)
    third = net.reader("third", reader)
    assert third.apply_remote(head_of(reader), served, served_data) == 16
    assert third.get_nowait(10) == b"block 10"
    assert third.missing() == [(0, 10), (11, 16)]
    # ...and to one that knows the head already.
    fourth = net.reader("fourth", reader)
    fetch(net.writer, fourth, 0, 0)
    proof, data = reader.proof(16, 10, 11, upgrade_from=16)
    fourth.apply_remote(head_of(reader), proof, data)
    assert fourth.has(10)
    # What it lacks, it cannot prove.
    with pytest.raises(errors.NotAvailable, match="not available"):
        reader.proof(16, 9, 10)
    with pytest.raises(errors.NotAvailable, match="not available"):
        third.proof(16, 0, 1)


def test_upgrades_follow_the_writer(net: Replicas) -> None:
    net.writer.append_batch(blocks(16))
    reader = net.reader("r")
    fetch(net.writer, reader, 0, 16)
    net.writer.append_batch(blocks(5, 16))
    proof, data = net.writer.proof(21, 21, 21, upgrade_from=16)
    assert data == []
    assert reader.apply_remote(head_of(net.writer), proof, data) == 21
    assert reader.roots_at(21) == net.writer.roots_at(21)
    assert reader.missing() == [(16, 21)]
    net.writer.append_batch(blocks(3, 21))
    fetch(net.writer, reader, 17, 19)  # a range and an upgrade in one proof
    assert reader.length == 24
    assert reader.missing() == [(16, 17), (19, 24)]
    assert reader.roots_at(16) == net.writer.roots_at(16)


def test_roots_at_and_proofs_at_older_lengths(net: Replicas) -> None:
    net.writer.append_batch(blocks(10))
    tree_at_6 = net.writer.roots_at(6)
    assert _core.tree_hash(tree_at_6) != net.writer.tree_hash()
    proof, data = net.writer.proof(6, 2, 3)
    verify_proof(proof, data, _core.tree_hash(tree_at_6))
    with pytest.raises(errors.InvalidInput):
        net.writer.roots_at(11)
    with pytest.raises(errors.InvalidInput):
        net.writer.proof(11, 0, 1)


def test_an_older_head_is_accepted_only_when_it_matches_our_tree(net: Replicas) -> None:
    net.writer.append_batch(blocks(6))
    lagging = net.reader("lagging")
    fetch(net.writer, lagging, 0, 6)
    net.writer.append_batch(blocks(6, 6))
    ahead = net.reader("ahead")
    fetch(net.writer, ahead, 0, 0)  # head of 12, only its roots (7 and 19)
    before = snapshot(ahead, net.stores[-1])
    with pytest.raises(errors.ProofError):  # the roots of 6 (3 and 9) are not known here
        fetch(lagging, ahead, 3, 4)
    assert snapshot(ahead, net.stores[-1]) == before
    fetch(net.writer, ahead, 0, 8)
    before = snapshot(ahead, net.stores[-1])
    assert ahead.length == 12
    ahead.apply_remote(head_of(lagging), *lagging.proof(6, 3, 4))  # now they are: block 3 is fine
    assert ahead.length == 12
    assert ahead.head() == net.writer.head()
    assert snapshot(ahead, net.stores[-1]) == before  # block 3 was already here
    with pytest.raises(errors.ProofError):  # a forged history at 6 does not tie in
        ahead.apply_remote(*forged_at(net, 6))


def test_multisig_feeds_replicate(net: Replicas) -> None:
    pairs = [KeyPair(bytes([i]) * 32) for i in range(3)]
    manifest = Manifest(tuple(p.public_key for p in pairs), quorum=2)
    writer = Feed.create_multisig(net.store("ms"), manifest, pairs[1:])
    writer.append_batch(blocks(5))
    reader = net.reader("ms-reader", writer)
    fetch(writer, reader, 0, 5)
    assert reader.get_nowait(4) == b"block 4"
    one_signature = SignedHead(5, 0, head_of(writer).tree_hash, head_of(writer).signatures[:1])
    fresh = net.reader("ms-fresh", writer)
    proof, data = writer.proof(5, 0, 1)
    with pytest.raises(errors.SignatureError):
        fresh.apply_remote(one_signature, proof, data)
    assert fresh.length == 0


@pytest.mark.anyio
async def test_a_download_wakes_a_waiting_get(net: Replicas) -> None:
    net.writer.append_batch(blocks(4))
    reader = net.reader("r")
    fetch(net.writer, reader, 0, 1)
    got: list[bytes] = []
    waiting = anyio.Event()

    async def wait_for_block_3() -> None:
        waiting.set()  # nothing yields between here and the wait inside get()
        got.append(await reader.get(3, timeout=5))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_block_3)
            await waiting.wait()
            assert got == []
            fetch(net.writer, reader, 3, 4)
    assert got == [b"block 3"]


# -- refusals change nothing ------------------------------------------------------------


def forked_writer(net: Replicas, name: str, n: int) -> Feed:
    """The same key writing a different history in fork 0 (an equivocating writer)."""
    twin = Feed.create(net.store(name), WRITER)
    twin.append_batch([b"forged %d" % i for i in range(n)])
    return twin


def forged_at(net: Replicas, length: int) -> tuple[SignedHead, bytes, list[bytes]]:
    twin = forked_writer(net, f"forged-{length}", length)
    return (head_of(twin), *twin.proof(length, 0, 1))


def reordered(proof: Proof) -> bytes:
    """The same proof with its node hashes and sizes in reverse order."""
    assert len(proof.nodes) > 1
    moved = [
        TreeNode(n.index, m.hash, m.size) for n, m in zip(proof.nodes, reversed(proof.nodes), strict=True)
    ]
    return Proof(proof.length, proof.upgrade_from, proof.start, proof.end, tuple(moved)).encode()


def refusals(net: Replicas, reader: Feed) -> list[tuple[str, type[Exception], object]]:
    w = net.writer
    head, proof, data = head_of(w), *w.proof(w.length, 10, 12, upgrade_from=reader.length)
    other_signed = Feed.create(net.store("impostor"), OTHER)
    other_signed.append_batch(blocks(w.length))
    tampered = [data[0], b"block X"]
    decoded = Proof.decode(proof)
    longer_proof, longer_data = w.proof(w.length, 10, 12, upgrade_from=0)
    twin = forked_writer(net, "twin", w.length)
    twin_proof, twin_data = twin.proof(twin.length, 10, 12, upgrade_from=reader.length)
    same_length_twin = forked_writer(net, "twin2", reader.length)
    sl_proof, sl_data = same_length_twin.proof(reader.length, 0, 1)
    return [
        (
            "bad signer",
            errors.SignatureError,
            (
                SignedHead(head.length, head.fork, head.tree_hash, head_of(other_signed).signatures),
                proof,
                data,
            ),
        ),
        ("tampered block", errors.ProofError, (head, proof, tampered)),
        ("missing block", errors.ProofError, (head, proof, data[:1])),
        ("extra block", errors.ProofError, (head, proof, [*data, b"more"])),
        ("truncated proof", errors.DecodeError, (head, proof[:-1], data)),
        ("garbage proof", errors.DecodeError, (head, b"\x01" + bytes(10), data)),
        (
            "proof for another length",
            errors.ProofError,
            (head, w.proof(w.length - 1, 10, 12, upgrade_from=reader.length)[0], data),
        ),
        ("no upgrade from our length", errors.ProofError, (head, longer_proof, longer_data)),
        (
            "wrong tree hash",
            errors.SignatureError,
            (SignedHead(head.length, head.fork, bytes(32), head.signatures), proof, data),
        ),
        ("forked history", errors.ProofError, (head_of(twin), twin_proof, twin_data)),
        ("conflicting head", errors.VerificationError, (head_of(same_length_twin), sl_proof, sl_data)),
        (
            "later fork",
            errors.InvalidInput,
            (SignedHead(head.length, 5, head.tree_hash, head.signatures), proof, data),
        ),
        ("not a head", errors.InvalidInput, (head.encode(), proof, data)),
        ("not buffers", errors.InvalidInput, (head, proof, ["text", "text"])),
        ("nodes reordered", errors.ProofError, (head, reordered(decoded), data)),
    ]


def test_every_refused_update_leaves_storage_unchanged(net: Replicas) -> None:
    net.writer.append_batch(blocks(16))
    reader = net.reader("r")
    store = net.stores[-1]
    fetch(net.writer, reader, 0, 3)
    net.writer.append_batch(blocks(8, 16))
    before = snapshot(reader, store)
    cases = refusals(net, reader)
    for name, error, (head, proof, data) in cases:
        with pytest.raises(error):
            reader.apply_remote(head, proof, data)  # type: ignore[arg-type]
        assert snapshot(reader, store) == before, name
    fetch(net.writer, reader, 10, 12)  # the genuine update still applies
    assert snapshot(reader, store) != before
    assert reader.length == 24


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(
    target=st.sampled_from(["head", "proof", "block"]), position=st.integers(0, 10**6), bit=st.integers(0, 7)
)
def test_any_flipped_bit_is_refused_and_stores_nothing(
    net: Replicas, target: str, position: int, bit: int
) -> None:
    if not net.writer.length:
        net.writer.append_batch(blocks(12))
        fetch(net.writer, net.reader("flip"), 0, 2)
        net.writer.append_batch(blocks(4, 12))
    reader, store = Feed.open(net.stores[1], net.writer.key), net.stores[1]
    proof, data = net.writer.proof(16, 6, 8, upgrade_from=12)
    parts = {
        "head": bytearray(head_of(net.writer).encode()),
        "proof": bytearray(proof),
        "block": bytearray(data[1]),
    }
    buf = parts[target]
    buf[position % len(buf)] ^= 1 << bit
    before = snapshot(reader, store)

    def apply() -> None:
        head = SignedHead.decode(bytes(parts["head"]))
        reader.apply_remote(head, bytes(parts["proof"]), [data[0], bytes(parts["block"])])

    with pytest.raises(errors.HyphalError):
        apply()
    assert snapshot(reader, store) == before


# -- following a truncation ---------------------------------------------------------------


def test_a_reader_follows_a_truncation(net: Replicas) -> None:
    net.writer.append_batch(blocks(13))
    reader = net.reader("r")
    fetch(net.writer, reader, 0, 13)
    net.writer.truncate(5)
    net.writer.append_batch([b"new 5", b"new 6"])
    head = head_of(net.writer)
    assert head.fork == 1
    with pytest.raises(errors.InvalidInput):  # a later fork is not an ordinary update
        reader.apply_remote(head, *net.writer.proof(7, 5, 7, upgrade_from=5))
    before = snapshot(reader, net.stores[-1])
    with pytest.raises(errors.ProofError):  # we did not agree up to 6
        reader.apply_truncation(head, *net.writer.proof(7, 6, 7, upgrade_from=6))
    with pytest.raises(errors.InvalidInput):  # not a later fork
        reader.apply_truncation(head_of(reader), *net.writer.proof(7, 5, 7, upgrade_from=5))
    assert snapshot(reader, net.stores[-1]) == before

    assert reader.apply_truncation(head, *net.writer.proof(7, 5, 6, upgrade_from=5)) == 7
    assert (reader.fork, reader.head()) == (1, head)
    assert reader.missing() == [(6, 7)]
    assert reader.get_nowait(4) == b"block 4"
    assert reader.get_nowait(5) == b"new 5"
    assert reader.tree_hash() == net.writer.tree_hash()
    fetch(net.writer, reader, 6, 7)
    # It serves the new history correctly.
    proof, data = reader.proof(7, 0, 7)
    verify_proof(proof, data, head.tree_hash)
    assert data[5:] == [b"new 5", b"new 6"]


def test_a_truncation_from_zero_always_applies(net: Replicas) -> None:
    net.writer.append_batch(blocks(6))
    reader = net.reader("r")
    fetch(net.writer, reader, 0, 6)
    net.writer.truncate(2)
    assert reader.apply_truncation(head_of(net.writer), *net.writer.proof(2, 0, 2, upgrade_from=0)) == 2
    assert reader.missing() == []
    assert reader.fork == 1
    assert net.stores[-1].get_blocks(reader.key, 0, 10).keys() == {0, 1}


def test_blocks_at_a_trusted_length_need_no_head(net: Replicas) -> None:
    net.writer.append_batch(blocks(12))
    reader = net.reader("r")
    store = net.stores[-1]
    fetch(net.writer, reader, 0, 0)
    reader.apply_proof(*net.writer.proof(12, 4, 6))
    assert reader.missing() == [(0, 4), (6, 12)]
    reader.apply_proof(*net.writer.proof(12, 9, 10, upgrade_from=12))
    assert reader.has(9)
    reader.apply_proof(*net.writer.proof(8, 0, 1))  # roots of 8 are a root of 12: known
    assert reader.has(0)
    before = snapshot(reader, store)
    net.writer.append(b"later")
    with pytest.raises(errors.ProofError):  # past our verified length: that needs a signed head
        reader.apply_proof(*net.writer.proof(13, 12, 13))
    proof, _ = net.writer.proof(12, 1, 2)
    with pytest.raises(errors.ProofError):
        reader.apply_proof(proof, [b"forged"])
    with pytest.raises(errors.NotAvailable, match="not available"):  # root 12 of length 7 is not here
        reader.apply_proof(*net.writer.proof(7, 1, 2))
    assert snapshot(reader, store) == before
