"""Signed append-only feeds: blocks, a Merkle tree over them, and a signed head.

A :class:`Feed` is one replica of a feed. The writer (anyone holding a
quorum of the manifest's signers) appends blocks and signs a new head for
each batch. Readers hold a verified head and any subset of the blocks (a
bitfield records which), and take more from peers through
:meth:`Feed.apply_remote`, which verifies everything before storing anything.

Hooks for replication, all synchronous and atomic:

- :meth:`Feed.head` / :attr:`Feed.length`: the latest verified head and its length.
- :meth:`Feed.roots_at`: our roots at a length, what a peer's upgrade proof must extend.
- :meth:`Feed.proof`: a proof and the stored blocks for a request, built from stored nodes.
- :meth:`Feed.apply_remote`: a peer's head + proof + blocks, verified then stored.
- :meth:`Feed.apply_proof`: a proof + blocks at a length we already trust (no head).
- :meth:`Feed.apply_truncation`: follow a writer's truncation (a head in a later fork).
- :meth:`Feed.on_change`, :meth:`Feed.changed`, :meth:`Feed.wait_for_length`: live updates.

A Feed is not thread-safe, and its awaitables belong to one event loop: use
it from one thread. Open a feed at most once per storage at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio
from typing_extensions import Buffer

from hyphal import _core
from hyphal.buffers import frozen
from hyphal.errors import DecodeError, InvalidInput, NotAvailable, ProofError, VerificationError
from hyphal.feed.bitfield import Bitfield, PageChanges, encode_page
from hyphal.feed.encryption import BlockCipher, default_read_secret
from hyphal.feed.head import MAX_FORK, SignedHead, Signer, can_sign, keypair_signer
from hyphal.feed.manifest import Manifest, discovery_key
from hyphal.merkle import MAX_LENGTH, Proof, TreeNode
from hyphal.notifier import Notifier
from hyphal.signing import KeyPair
from hyphal.storage.base import FeedRecord, FeedWrite, Storage

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeedChange:
    """A committed change: blocks ``[start, end)`` arrived (empty for a bare head update).

    ``truncated_to`` is set when the change dropped every block from that index on.
    """

    length: int
    fork: int
    start: int
    end: int
    truncated_to: int | None = None


def _not_available(what: str) -> NotAvailable:
    return NotAvailable(f"{what} is not available")


MAX_BLOCK_SIZE = 3 * 1024 * 1024
"""Largest block: one block, its head and proof must fit one replication message (PROTOCOL.md §10.3)."""
_MAX_STORED_BLOCK = MAX_BLOCK_SIZE + 64  # an encrypted block carries its fork and tag too


def _as_blocks(blocks: Sequence[Buffer]) -> list[Buffer]:
    try:
        for block in blocks:
            if memoryview(block).nbytes > _MAX_STORED_BLOCK:
                raise InvalidInput(f"a block is at most {MAX_BLOCK_SIZE} bytes; store larger data as a blob")
    except TypeError:
        raise InvalidInput("blocks must be bytes-like objects") from None
    return list(blocks)


def _parse_proof(proof: Buffer, blocks: Sequence[Buffer]) -> tuple[bytes, list[Buffer], Proof]:
    try:
        proof_bytes = bytes(proof)
    except TypeError:
        raise InvalidInput("proof must be bytes-like") from None
    parsed = Proof.decode(proof_bytes)
    # Blocks received are views of immutable frames: verified and stored as they are.
    owned = [frozen(b) for b in _as_blocks(blocks)]
    if len(owned) != parsed.end - parsed.start:
        raise ProofError(f"proof covers {parsed.end - parsed.start} blocks, {len(owned)} given")
    return proof_bytes, owned, parsed


def _check_head(head: SignedHead) -> None:
    if not isinstance(head, SignedHead):
        raise InvalidInput("head must be a SignedHead (decode it with SignedHead.decode)")


def _check_index(index: int, what: str = "index") -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_LENGTH:
        raise InvalidInput(f"{what} must be an integer in [0, 2^62)")


def _roots_of(nodes: Sequence[TreeNode], length: int) -> list[TreeNode]:
    by_index = {n.index: n for n in nodes}
    try:
        return [by_index[i] for i in _core.ft_full_roots(length)]
    except KeyError:
        raise ProofError("the proof did not yield the new tree's roots") from None


class Feed:
    """One replica of a feed; make it with :meth:`create`, :meth:`create_multisig` or :meth:`open`."""

    def __init__(
        self,
        storage: Storage,
        manifest: Manifest,
        head: SignedHead | None,
        roots: list[TreeNode],
        bitfield: Bitfield,
        signer: Signer | None,
        cipher: BlockCipher | None,
        *,
        encrypted: bool,
        read_secret: bytes | None,
        check_own_heads: bool,
    ) -> None:
        self._storage = storage
        self._manifest = manifest
        self._key = manifest.key
        self._discovery_key = discovery_key(self._key)
        self._head = head
        self._roots = roots
        self._bitfield = bitfield
        self._signer = signer
        self._cipher = cipher
        self._encrypted = encrypted
        self._read_secret = read_secret
        self._check_own_heads = check_own_heads
        self._changes: Notifier[FeedChange] = Notifier()

    # -- making and opening ------------------------------------------------------

    @classmethod
    def create(
        cls,
        storage: Storage,
        keypair: KeyPair,
        *,
        encrypted: bool = False,
        label: bytes = b"",
        read_secret: bytes | None = None,
    ) -> Feed:
        """A new single-writer (1-of-1) feed of ``keypair``.

        With ``encrypted=True`` blocks are sealed under a key from
        ``read_secret``; by default that secret is derived from the keypair's
        seed, so the writer stores nothing extra. Share :attr:`read_secret`
        with readers.
        """
        manifest = Manifest.single(keypair.public_key, label)
        if encrypted and read_secret is None:
            read_secret = default_read_secret(keypair.seed, manifest.key)
        signer = keypair_signer(manifest, [keypair])
        return cls._create(storage, manifest, signer, encrypted, read_secret, check_own_heads=False)

    @classmethod
    def create_multisig(
        cls,
        storage: Storage,
        manifest: Manifest,
        signer: Sequence[KeyPair] | Signer,
        *,
        encrypted: bool = False,
        read_secret: bytes | None = None,
    ) -> Feed:
        """A new M-of-N feed. ``signer`` is at least ``quorum`` of the signers' keypairs, or a callback.

        A callback gets the 112-byte head signable and returns
        :class:`~hyphal.feed.head.HeadSignature` s of at least ``quorum``
        signers (say, after asking other devices); every head it produces is
        verified before it is stored. An encrypted M-of-N feed needs an
        explicit ``read_secret``.
        """
        if encrypted and read_secret is None:
            raise InvalidInput("an encrypted multisig feed needs a read_secret")
        if callable(signer):
            return cls._create(storage, manifest, signer, encrypted, read_secret, check_own_heads=True)
        return cls._create(
            storage, manifest, keypair_signer(manifest, signer), encrypted, read_secret, check_own_heads=False
        )

    @classmethod
    def _create(
        cls,
        storage: Storage,
        manifest: Manifest,
        signer: Signer,
        encrypted: bool,
        read_secret: bytes | None,
        *,
        check_own_heads: bool,
    ) -> Feed:
        if read_secret is not None and not encrypted:
            raise InvalidInput("a read_secret only makes sense with encrypted=True")
        key = manifest.key
        cipher = BlockCipher(read_secret, key) if read_secret is not None else None
        head = SignedHead.sign(key, _core.tree_hash([]), 0, 0, signer)
        head.verify(manifest)
        storage.create_feed(FeedRecord(key, manifest.encode(), encrypted, head.encode()))
        return cls(
            storage,
            manifest,
            head,
            [],
            Bitfield(),
            signer,
            cipher,
            encrypted=encrypted,
            read_secret=read_secret,
            check_own_heads=check_own_heads,
        )

    @classmethod
    def open(
        cls,
        storage: Storage,
        key: bytes,
        *,
        keypair: KeyPair | None = None,
        keypairs: Sequence[KeyPair] = (),
        signer: Signer | None = None,
        manifest: Manifest | None = None,
        read_secret: bytes | None = None,
    ) -> Feed:
        """Open a stored feed, or start following one (pass its ``manifest``; it must hash to ``key``).

        Writable when ``keypair``/``keypairs`` hold a quorum of signers, or a
        ``signer`` callback is given; read-only otherwise. A feed stored as
        encrypted opened by its 1-of-1 writer re-derives the read secret;
        readers pass ``read_secret`` (without it they hold and serve
        ciphertext, as a relay does).
        """
        record = storage.load_feed(key)
        if record is None:
            if manifest is None:
                raise InvalidInput("no such feed in storage; pass its manifest to follow it")
            if manifest.key != key:
                raise InvalidInput("the manifest does not hash to this feed key")
            record = FeedRecord(key, manifest.encode(), read_secret is not None, None)
            storage.create_feed(record)
        stored = Manifest.decode(record.manifest)
        if stored.key != key:
            raise DecodeError("storage: the stored manifest does not hash to its feed key")
        head = None if record.head is None else SignedHead.decode_verified(record.head, stored)
        roots = cls._load_roots(storage, key, head)
        bitfield = Bitfield.from_rows(storage.bitfield_pages(key))

        keypairs = [*keypairs, *([keypair] if keypair is not None else [])]
        check_own_heads = False
        if signer is not None:
            check_own_heads = True
        elif can_sign(stored, keypairs):
            signer = keypair_signer(stored, keypairs)
        if read_secret is None and record.encrypted and stored.quorum == 1 and len(stored.signers) == 1:
            owner = next((k for k in keypairs if k.public_key == stored.signers[0]), None)
            if owner is not None:
                read_secret = default_read_secret(owner.seed, key)
        cipher = BlockCipher(read_secret, key) if read_secret is not None else None
        return cls(
            storage,
            stored,
            head,
            roots,
            bitfield,
            signer,
            cipher,
            encrypted=record.encrypted or cipher is not None,
            read_secret=read_secret,
            check_own_heads=check_own_heads,
        )

    @staticmethod
    def _load_roots(storage: Storage, key: bytes, head: SignedHead | None) -> list[TreeNode]:
        if head is None:
            return []
        indexes = _core.ft_full_roots(head.length)
        found = storage.get_nodes(key, indexes)
        if len(found) != len(indexes):
            raise DecodeError("storage: a root of the stored head is missing")
        roots = [found[i] for i in indexes]
        if _core.tree_hash(roots) != head.tree_hash:
            raise VerificationError("storage: the stored roots do not match the stored head")
        return roots

    # -- what it is ---------------------------------------------------------------

    @property
    def key(self) -> bytes:
        """The feed key (hash of the manifest). Never put it on the wire; use :attr:`discovery_key`."""
        return self._key

    @property
    def discovery_key(self) -> bytes:
        return self._discovery_key

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def writable(self) -> bool:
        return self._signer is not None

    @property
    def encrypted(self) -> bool:
        """Blocks are sealed. :attr:`can_decrypt` says whether this replica has the read secret."""
        return self._encrypted

    @property
    def can_decrypt(self) -> bool:
        return self._cipher is not None

    @property
    def read_secret(self) -> bytes | None:
        """The secret readers need to decrypt blocks; share it only with readers."""
        return self._read_secret

    @property
    def length(self) -> int:
        """The verified length: the length of the latest verified head (0 before any)."""
        return 0 if self._head is None else self._head.length

    @property
    def byte_length(self) -> int:
        """Bytes covered by the verified head (stored sizes: ciphertext for encrypted feeds)."""
        return sum(r.size for r in self._roots)

    @property
    def fork(self) -> int:
        return 0 if self._head is None else self._head.fork

    @property
    def contiguous_length(self) -> int:
        """How many blocks from 0 on this replica holds without a gap."""
        return self._bitfield.next_missing(0, self.length)

    def head(self) -> SignedHead | None:
        """The latest verified head; None for a reader that has not seen one yet."""
        return self._head

    def tree_hash(self) -> bytes:
        return _core.tree_hash(self._roots)

    # -- which blocks are here -------------------------------------------------------

    def has(self, index: int) -> bool:
        _check_index(index)
        return self._bitfield.has(index)

    def has_range(self, start: int, end: int) -> bool:
        self._check_range(start, end)
        return self._bitfield.has_range(start, end)

    def missing(self, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
        """Missing blocks of ``[start, end)`` (default: up to the verified length) as ranges."""
        end = self.length if end is None else end
        self._check_range(start, end)
        return self._bitfield.missing(start, end)

    def downloaded(self) -> int:
        """How many blocks this replica holds."""
        return self._bitfield.count()

    @staticmethod
    def _check_range(start: int, end: int) -> None:
        for value in (start, end):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput("range bounds must be integers")
        if not 0 <= start <= end <= MAX_LENGTH:
            raise InvalidInput(f"block range [{start}, {end}) is not within [0, 2^62]")

    # -- reading --------------------------------------------------------------------

    async def get(self, index: int, *, wait: bool = True, timeout: float | None = None) -> bytes:
        """Block ``index`` (decrypted when this replica can).

        Waits for a block that is not here yet (a local append or a verified
        download), up to ``timeout`` seconds (:class:`TimeoutError`). With
        ``wait=False`` a missing block raises at once.
        """
        _check_index(index)
        if not self._bitfield.has(index):
            if not wait:
                raise _not_available(f"block {index}")
            with anyio.fail_after(timeout):
                while not self._bitfield.has(index):
                    await self._changes.wait()
        return self.get_nowait(index)

    def get_nowait(self, index: int) -> bytes:
        """Block ``index`` if it is here (decrypted when this replica can); never waits."""
        stored = self.get_stored(index)
        if self._cipher is not None:
            return self._cipher.open(index, stored)
        if self._encrypted:
            raise InvalidInput("this feed is encrypted and was opened without its read secret")
        return stored

    def get_stored(self, index: int) -> bytes:
        """Block ``index`` as stored and replicated (ciphertext for encrypted feeds).

        The block is checked against its verified leaf, so disk corruption
        surfaces as :class:`VerificationError` instead of reaching a reader.
        """
        _check_index(index)
        if not self._bitfield.has(index):
            raise _not_available(f"block {index}")
        data = self._storage.get_block(self._key, index)
        leaf = self._storage.get_nodes(self._key, [2 * index]).get(2 * index)
        if data is None or leaf is None:
            raise DecodeError(f"storage: block {index} is marked present but is not stored")
        if leaf.size != len(data) or _core.leaf_hash(index, data) != leaf.hash:
            raise VerificationError(f"storage: block {index} does not match its verified leaf")
        return data

    # -- writing ---------------------------------------------------------------------

    def append(self, block: Buffer) -> int:
        """Append one block; returns the new length. Durable (committed) when it returns."""
        return self.append_batch([block])

    def append_batch(self, blocks: Sequence[Buffer]) -> int:
        """Append blocks in one transaction with one tree update and one signature."""
        signer = self._require_writable()
        blocks = _as_blocks(blocks)
        if any(memoryview(b).nbytes > MAX_BLOCK_SIZE for b in blocks):
            raise InvalidInput(f"a block is at most {MAX_BLOCK_SIZE} bytes; store larger data as a blob")
        start = self.length
        if not blocks:
            return start
        end = start + len(blocks)
        if end > MAX_LENGTH:
            raise InvalidInput("a feed holds at most 2^62 blocks")
        stored = blocks if self._cipher is None else self._cipher.seal_batch(start, self.fork, blocks)
        nodes, roots = _core.tree_append(self._roots, stored)
        head = self._sign(signer, _core.tree_hash(roots), end, self.fork)
        bits = self._bitfield.set_range_changes(start, end)
        self._storage.write_feed(
            self._key,
            FeedWrite(
                block_start=start, blocks=stored, nodes=nodes, bitfield=_encode(bits), head=head.encode()
            ),
        )
        self._commit(head, roots, bits, FeedChange(end, head.fork, start, end))
        return end

    def truncate(self, length: int) -> None:
        """Drop blocks ``>= length``, bump the fork and sign a head at ``(length, fork + 1)``."""
        signer = self._require_writable()
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self.length:
            raise InvalidInput(f"truncate to {length!r}: not within [0, {self.length}]")
        if self.fork >= MAX_FORK:
            raise InvalidInput("the fork counter is exhausted")
        roots = self.roots_at(length)
        head = self._sign(signer, _core.tree_hash(roots), length, self.fork + 1)
        bits = self._bitfield.truncate_changes(length)
        self._storage.write_feed(
            self._key, FeedWrite(truncate_from=length, bitfield=_encode(bits), head=head.encode())
        )
        self._commit(head, roots, bits, FeedChange(length, head.fork, length, length, truncated_to=length))

    def _require_writable(self) -> Signer:
        if self._signer is None:
            raise InvalidInput("this feed is read-only here: no quorum of its signers")
        return self._signer

    def _sign(self, signer: Signer, tree_hash: bytes, length: int, fork: int) -> SignedHead:
        head = SignedHead.sign(self._key, tree_hash, length, fork, signer)
        if self._check_own_heads:
            head.verify(self._manifest)  # a callback may hand back anything
        return head

    def _commit(
        self, head: SignedHead | None, roots: list[TreeNode], bits: PageChanges, change: FeedChange
    ) -> None:
        """Adopt what was just written (never call before the write committed)."""
        if head is not None:
            self._head, self._roots = head, roots
        self._bitfield.apply(bits)
        self._changes.notify(change)

    # -- replication hooks -----------------------------------------------------------

    def roots_at(self, length: int) -> list[TreeNode]:
        """The tree's roots at ``length <= self.length``, from stored nodes.

        A peer's proof with ``upgrade_from=length`` is checked against these.
        """
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self.length:
            raise InvalidInput(f"length {length!r} is not within [0, {self.length}]")
        if length == self.length:
            return list(self._roots)
        indexes = _core.ft_full_roots(length)
        found = self._storage.get_nodes(self._key, indexes)
        missing = [i for i in indexes if i not in found]
        if missing:
            raise _not_available(f"node {missing[0]} (a root at length {length})")
        return [found[i] for i in indexes]

    def proof(self, length: int, start: int, end: int, upgrade_from: int = 0) -> tuple[bytes, list[bytes]]:
        """An encoded proof for blocks ``[start, end)`` of the tree at ``length``, and those blocks.

        ``upgrade_from`` is the verifier's length (PROTOCOL.md §4). Blocks are
        as stored (ciphertext for encrypted feeds). Raises when a needed node
        or block is not held here.
        """
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self.length:
            raise InvalidInput(f"proof length {length!r} is not within [0, {self.length}]")
        indexes = _core.proof_indices(length, start, end, upgrade_from)
        found = self._storage.get_nodes(self._key, indexes)
        missing = [i for i in indexes if i not in found]
        if missing:
            raise _not_available(f"node {missing[0]}")
        if not self._bitfield.has_range(start, end):
            raise _not_available(f"block {self._bitfield.next_missing(start, end)}")
        blocks = self._storage.get_blocks(self._key, start, end)
        if len(blocks) != end - start:
            raise DecodeError("storage: blocks marked present are not stored")
        proof = _core.encode_proof(length, upgrade_from, start, end, [found[i] for i in indexes])
        return proof, [blocks[i] for i in range(start, end)]

    def apply_remote(self, head: SignedHead, proof: Buffer, blocks: Sequence[Buffer]) -> int:
        """Verify a peer's head, proof and blocks, then store them all atomically.

        - ``head`` must be in this feed's fork (a later fork goes to
          :meth:`apply_truncation`) and signed by a quorum.
        - ``proof`` must be for ``head.length``. A head longer than ours must
          come with ``upgrade_from == self.length``: the proof then shows the
          new tree extends ours. A head at our length must be our head. A
          shorter head is accepted only if its roots match our stored nodes.
        - Every node the proof verified, the blocks and the head (when newer)
          are stored in one transaction. On any failure nothing is stored and
          a :class:`~hyphal.errors.HyphalError` is raised.

        Returns the verified length afterwards.
        """
        _check_head(head)
        if self._head is not None and head.fork != self._head.fork:
            raise InvalidInput(
                f"head is in fork {head.fork}, this feed in {self._head.fork}: see apply_truncation"
            )
        proof_bytes, blocks, parsed = self._check_remote(head, proof, blocks)
        ours = self.length
        if head.length > ours and parsed.upgrade_from != ours:
            raise ProofError(f"a head past our length {ours} needs a proof upgrading from {ours}")
        if head.length == ours and self._head is not None and head.tree_hash != self._head.tree_hash:
            raise VerificationError("conflicting heads: same fork and length, different trees")
        if parsed.upgrade_from > ours:
            raise ProofError(f"proof upgrades from {parsed.upgrade_from}, past our length {ours}")
        known = self.roots_at(parsed.upgrade_from)
        verified = _core.verify_proof(proof_bytes, blocks, head.tree_hash, known)
        newer = self._head is None or head.length > ours
        if head.length < ours:
            self._check_older_head(head, verified)
        roots = _roots_of(verified, head.length) if newer else self._roots
        bits = self._bitfield.set_range_changes(parsed.start, parsed.end)
        self._storage.write_feed(
            self._key,
            FeedWrite(
                block_start=parsed.start,
                blocks=blocks,
                nodes=verified,
                bitfield=_encode(bits),
                head=head.encode() if newer else None,
            ),
        )
        length = head.length if newer else ours
        self._commit(
            head if newer else None, roots, bits, FeedChange(length, head.fork, parsed.start, parsed.end)
        )
        return self.length

    def apply_truncation(self, head: SignedHead, proof: Buffer, blocks: Sequence[Buffer]) -> int:
        """Follow a writer's truncation: adopt ``head`` from a later fork.

        ``proof.upgrade_from = m`` is the length up to which our tree and the
        new one agree (the replication layer learns it from the peer; a wrong
        ``m`` fails verification, and ``m = 0`` always works). The proof shows
        the new tree extends our tree at ``m``; blocks and nodes past ``m``
        are dropped, and the proof's blocks, nodes and the head are stored,
        all in one transaction. Returns the new verified length.
        """
        _check_head(head)
        if self._head is None:
            return self.apply_remote(head, proof, blocks)
        if head.fork <= self._head.fork:
            raise InvalidInput(f"head fork {head.fork} is not after this feed's fork {self._head.fork}")
        proof_bytes, blocks, parsed = self._check_remote(head, proof, blocks)
        keep = parsed.upgrade_from
        if keep > self.length:
            raise ProofError(f"proof keeps {keep} blocks, past our length {self.length}")
        verified = _core.verify_proof(proof_bytes, blocks, head.tree_hash, self.roots_at(keep))
        roots = _roots_of(verified, head.length)
        after = self._bitfield.copy()
        cut = after.truncate_changes(keep)
        after.apply(cut)
        bits = {**cut, **after.set_range_changes(parsed.start, parsed.end)}
        self._storage.write_feed(
            self._key,
            FeedWrite(
                truncate_from=keep,
                block_start=parsed.start,
                blocks=blocks,
                nodes=verified,
                bitfield=_encode(bits),
                head=head.encode(),
            ),
        )
        self._commit(head, roots, bits, FeedChange(head.length, head.fork, parsed.start, parsed.end, keep))
        return self.length

    def apply_proof(self, proof: Buffer, blocks: Sequence[Buffer]) -> None:
        """Verify blocks proved against our own verified tree, and store them (no new head).

        For data at a length we already trust: ``proof.length <= self.length``,
        checked against our tree hash at that length (our roots at it must be
        stored). Stores blocks, nodes and bitfield atomically, or nothing.
        """
        proof_bytes, owned, parsed = _parse_proof(proof, blocks)
        if parsed.length > self.length:
            raise ProofError(
                f"proof is for length {parsed.length}, past ours: it needs a head (apply_remote)"
            )
        trusted = _core.tree_hash(self.roots_at(parsed.length))
        verified = _core.verify_proof(proof_bytes, owned, trusted, self.roots_at(parsed.upgrade_from))
        bits = self._bitfield.set_range_changes(parsed.start, parsed.end)
        self._storage.write_feed(
            self._key,
            FeedWrite(block_start=parsed.start, blocks=owned, nodes=verified, bitfield=_encode(bits)),
        )
        self._commit(None, self._roots, bits, FeedChange(self.length, self.fork, parsed.start, parsed.end))

    def _check_remote(
        self, head: SignedHead, proof: Buffer, blocks: Sequence[Buffer]
    ) -> tuple[bytes, list[Buffer], Proof]:
        head.verify(self._manifest)
        proof_bytes, owned, parsed = _parse_proof(proof, blocks)
        if parsed.length != head.length:
            raise ProofError(f"proof is for length {parsed.length}, the head for {head.length}")
        return proof_bytes, owned, parsed

    def _check_older_head(self, head: SignedHead, verified: Sequence[TreeNode]) -> None:
        """An older head in our fork is only as good as its agreement with our verified tree."""
        theirs = _roots_of(verified, head.length)
        ours = self._storage.get_nodes(self._key, [r.index for r in theirs])
        for root in theirs:
            if ours.get(root.index) != root:
                raise ProofError(f"cannot tie the head at {head.length} to our tree (node {root.index})")

    # -- waiting for changes ------------------------------------------------------------

    def on_change(self, listener: Callable[[FeedChange], None]) -> Callable[[], None]:
        """Call ``listener`` after every committed change; returns an unsubscribe function."""
        return self._changes.subscribe(listener)

    async def changed(self) -> None:
        """Return after the next committed change (append, download, truncation)."""
        await self._changes.wait()

    async def wait_for_length(self, length: int, timeout: float | None = None) -> int:
        """Wait until the verified length is at least ``length``; returns it (or :class:`TimeoutError`)."""
        with anyio.fail_after(timeout):
            while self.length < length:
                await self._changes.wait()
        return self.length

    def __repr__(self) -> str:
        role = "writer" if self.writable else "reader"
        return f"Feed({self._discovery_key.hex()[:16]}…, {role}, length={self.length}, fork={self.fork})"


def _encode(changes: PageChanges) -> dict[int, bytes]:
    return {page: encode_page(bits) if bits else b"" for page, bits in changes.items()}


__all__ = ["Feed", "FeedChange", "Notifier"]
