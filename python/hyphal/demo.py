"""`make demo`: the core at work on a real file.

A writer hashes a file into a Merkle tree of 64 KiB blocks and signs the
tree head. A reader that trusts only the writer's public key checks the
signature, fetches one block with its proof, follows the feed as it grows
with an upgrade proof, and refuses a tampered block and a forked history.
Then three nodes, each with its own SQLite storage, replicate the file as a
feed over Noise-encrypted TCP: a full copy, a sparse read, a live update.
Exits non-zero if anything does not hold.

Usage: ``python -m hyphal.demo [FILE]`` (default: 8 MiB of random bytes).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from hyphal import KeyPair, MerkleTree, ProofError, TreeNode, blake3, create_proof, verify, verify_proof
from hyphal.demo_replication import run_nodes
from hyphal.merkle import Proof

BLOCK_SIZE = 64 * 1024


class DemoFailure(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)
    print(f"  ok: {what}")


def read_blocks(path: Path) -> list[bytes]:
    blocks = []
    with path.open("rb") as f:
        while block := f.read(BLOCK_SIZE):
            blocks.append(block)
    return blocks


def run(path: Path) -> None:
    blocks = read_blocks(path)
    size = sum(len(b) for b in blocks)
    print(f"1. The writer hashes {path.name} ({size / 2**20:.1f} MiB) into {len(blocks)} blocks of 64 KiB")
    writer = KeyPair.generate()
    # Steps 1-6 show the core alone, keyed by the hash of the writer's key; step 7 uses real feeds.
    feed_key = blake3(writer.public_key)
    tree = MerkleTree()
    stored: dict[int, TreeNode] = {}
    first, rest = blocks[: len(blocks) // 2], blocks[len(blocks) // 2 :]
    started = time.perf_counter()
    for node in tree.append(first):
        stored[node.index] = node
    old_roots, old_length, old_hash = tree.roots, tree.length, tree.hash()
    for node in tree.append(rest):
        stored[node.index] = node
    elapsed = time.perf_counter() - started
    rate = size / elapsed / 1e9
    print(f"   {tree.length} blocks, {len(stored)} nodes in {elapsed * 1e3:.1f} ms ({rate:.2f} GB/s)")
    signature = writer.sign(tree.signable(feed_key, fork=0))
    print(f"   tree hash {tree.hash().hex()[:32]}…, signed by {writer.public_key.hex()[:16]}…")

    print("2. A reader that trusts only the public key checks the signed head")
    check(verify(writer.public_key, tree.signable(feed_key, fork=0), signature), "signature verifies")

    wanted = len(blocks) - 1
    print(f"3. The reader fetches only block {wanted} with its proof")
    proof = create_proof(stored.__getitem__, tree.length, wanted, wanted + 1)
    wire = proof.encode()
    verified = verify_proof(Proof.decode(wire), [blocks[wanted]], tree.hash())
    carried = f"proof carries {len(proof.nodes)} node(s), {len(wire)} bytes"
    check(len(proof.nodes) <= 2 * tree.length.bit_length(), carried)
    check(stored[2 * wanted] in verified, "the block verifies against the signed tree hash")

    print("4. A tampered block is refused")
    tampered = bytearray(blocks[wanted])
    tampered[len(tampered) // 2] ^= 0x01
    try:
        verify_proof(proof, [bytes(tampered)], tree.hash())
    except ProofError as e:
        check(True, f"refused: {e}")
    else:
        raise DemoFailure("a tampered block verified")

    print(f"5. A reader at length {old_length} follows the feed to {tree.length} with one upgrade proof")
    follower = MerkleTree(old_roots)
    check(follower.hash() == old_hash, "the follower starts from the old tree hash")
    upgrade = create_proof(stored.__getitem__, tree.length, tree.length, tree.length, upgrade_from=old_length)
    follower.apply_proof(upgrade, [], tree.hash())
    upgraded = f"upgraded with {len(upgrade.nodes)} node(s); the new tree extends the old"
    check(follower.hash() == tree.hash(), upgraded)

    print("6. A forked history (block 0 rewritten) cannot pass as an upgrade")
    forked = MerkleTree()
    forked.append([b"rewritten", *first[1:]])
    try:
        MerkleTree(forked.roots).apply_proof(upgrade, [], tree.hash())
    except ProofError as e:
        check(True, f"refused: {e}")
    else:
        raise DemoFailure("a forked history was accepted")
    print("7. Three nodes replicate the file as a feed over encrypted TCP on 127.0.0.1")
    run_nodes(blocks, check)
    print("All checks held.")


def main(argv: list[str]) -> int:
    try:
        if len(argv) > 1:
            path = Path(argv[1])
            if not path.is_file():
                print(f"error: {path} is not a file", file=sys.stderr)
                return 2
            run(path)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "random.bin"
                path.write_bytes(os.urandom(8 * 2**20 + 12345))
                run(path)
    except DemoFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
