"""Fixed keys and small helpers shared by the targets: every seed is the same on every run."""

from __future__ import annotations

from hyphal.signing import KeyPair


def keypair(n: int) -> KeyPair:
    """The ``n``-th fixed identity (seed ``bytes([n]) * 32``)."""
    return KeyPair(bytes([n]) * 32)


def mode(data: bytes, count: int) -> tuple[int, bytes]:
    """The first byte picks one of ``count`` modes; the rest is the mode's input."""
    if not data:
        return 0, b""
    return data[0] % count, data[1:]


__all__ = ["keypair", "mode"]


# -- a small real feed: manifest, blocks, tree nodes, a signed head ------------------------------

BLOCKS = tuple(f"block {i}: ".encode() + bytes([i]) * (3 * i) for i in range(7))


class Feed:
    """Seven blocks appended to a 2-of-3 feed, with its tree nodes and a signed head."""

    def __init__(self) -> None:
        from hyphal.feed.head import SignedHead, keypair_signer
        from hyphal.feed.manifest import Manifest
        from hyphal.merkle import MerkleTree

        self.signers = [keypair(n) for n in (3, 4, 5)]
        self.manifest = Manifest(tuple(k.public_key for k in self.signers), quorum=2, label=b"fuzz")
        self.tree = MerkleTree()
        self.nodes = {n.index: n for n in self.tree.append(BLOCKS, parallel=False)}
        self.length = len(BLOCKS)
        self.head = SignedHead.sign(
            self.manifest.key, self.tree.hash(), self.length, 0, keypair_signer(self.manifest, self.signers)
        )

    def proof(self, start: int, end: int, upgrade_from: int = 0) -> bytes:
        from hyphal.merkle import create_proof

        return create_proof(self.nodes.__getitem__, self.length, start, end, upgrade_from).encode()

    def roots_at(self, length: int) -> list[object]:
        from hyphal import _core

        return [self.nodes[i] for i in _core.ft_full_roots(length)] if length else []
