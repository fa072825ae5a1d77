"""Merkle proofs (merkle.py, decoded and verified in the Rust core) against a real 7-block feed.

A decoded proof must encode back to its bytes. Its range's blocks are the
feed's own (a stand-in past the end), the verifier's known roots are the
feed's roots at the proof's ``upgrade_from``, and it is verified against the
feed's tree hash, as ``Feed.apply_remote`` does. Refusal: ``DecodeError`` or
``ProofError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import BLOCKS, Feed
from fuzz.harness import Target
from hyphal.errors import DecodeError, ProofError
from hyphal.merkle import Proof, verify_proof

FEED = Feed()
TREE_HASH = FEED.tree.hash()
MAX_BLOCKS = 1024  # what a REQUEST may ask for (replication/messages.py)


def run(data: bytes) -> None:
    proof = Proof.decode(data)
    assert proof.encode() == data, "a proof decoded from a non-canonical encoding"
    if proof.end - proof.start > MAX_BLOCKS:
        return
    blocks = [BLOCKS[i] if i < len(BLOCKS) else b"beyond" for i in range(proof.start, proof.end)]
    known = FEED.roots_at(proof.upgrade_from) if proof.upgrade_from <= FEED.length else []
    verify_proof(data, blocks, TREE_HASH, known)  # type: ignore[arg-type]


def seeds() -> Iterator[bytes]:
    for start, end, upgrade_from in ((0, 1, 0), (2, 5, 0), (6, 7, 0), (0, 0, 3), (3, 4, 5), (0, 7, 0)):
        yield FEED.proof(start, end, upgrade_from)


TARGET = Target("proofs", run, (DecodeError, ProofError), seeds)
