"""What a mainline node holds for others: announced peers (BEP 5) and BEP 44 items, bounded in memory.

Only verified items get here (the server checks them first). A mutable item
replaces the one held only with a higher seq; equal seq keeps the held
one; a lower seq or a failed compare-and-swap is refused with BEP 44's
error codes. Past ``max_items`` / ``max_hashes`` the entry that expires
first is forgotten.
"""

from __future__ import annotations

from hyphal.mainline.items import ImmutableItem, MutableItem
from hyphal.mainline.messages import CAS_MISMATCH, SEQ_TOO_OLD, Addr


class ItemRefused(Exception):
    """A put the store will not take: ``code`` is the BEP 44 error to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ItemStore:
    __slots__ = (
        "_immutable",
        "_mutable",
        "_peers",
        "item_ttl",
        "max_hashes",
        "max_items",
        "max_peers",
        "peer_ttl",
    )

    def __init__(
        self,
        *,
        item_ttl: float = 7200.0,
        peer_ttl: float = 1800.0,
        max_items: int = 5000,
        max_hashes: int = 5000,
        max_peers: int = 100,
    ) -> None:
        self.item_ttl = item_ttl
        self.peer_ttl = peer_ttl
        self.max_items = max_items
        self.max_hashes = max_hashes
        self.max_peers = max_peers
        self._immutable: dict[bytes, tuple[ImmutableItem, float]] = {}
        self._mutable: dict[bytes, tuple[MutableItem, float]] = {}
        self._peers: dict[bytes, dict[Addr, float]] = {}

    # peers

    def add_peer(self, info_hash: bytes, addr: Addr, now: float) -> None:
        peers = self._peers.get(info_hash)
        if peers is None:
            if len(self._peers) >= self.max_hashes:
                del self._peers[next(iter(self._peers))]
            peers = self._peers[info_hash] = {}
        peers.pop(addr, None)
        if len(peers) >= self.max_peers:
            del peers[next(iter(peers))]
        peers[addr] = now + self.peer_ttl

    def peers(self, info_hash: bytes, now: float, limit: int = 50) -> list[Addr]:
        peers = self._peers.get(info_hash, {})
        live = [a for a, expires in peers.items() if expires > now]
        return live[-limit:]

    # items

    def _room(self) -> None:
        if len(self._immutable) + len(self._mutable) < self.max_items:
            return
        pools = [p for p in (self._immutable, self._mutable) if p]
        oldest = min(pools, key=lambda p: min(e for _, e in p.values()))
        key = min(oldest, key=lambda k: oldest[k][1])
        del oldest[key]

    def put_immutable(self, item: ImmutableItem, now: float) -> None:
        target = item.target
        if target not in self._immutable:
            self._room()
        self._immutable[target] = (item, now + self.item_ttl)

    def put_mutable(self, item: MutableItem, now: float, cas: int | None = None) -> None:
        target = item.target
        held = self._mutable.get(target)
        if held is not None:
            old = held[0]
            if cas is not None and cas != old.seq:
                raise ItemRefused(CAS_MISMATCH, "CAS mismatch")
            if item.seq < old.seq:
                raise ItemRefused(SEQ_TOO_OLD, "sequence number less than current")
            if item.seq == old.seq:
                if item.v == old.v:
                    self._mutable[target] = (old, now + self.item_ttl)
                return
        else:
            self._room()
        self._mutable[target] = (item, now + self.item_ttl)

    def get_immutable(self, target: bytes, now: float) -> ImmutableItem | None:
        held = self._immutable.get(target)
        return held[0] if held is not None and held[1] > now else None

    def get_mutable(self, target: bytes, now: float) -> MutableItem | None:
        held = self._mutable.get(target)
        return held[0] if held is not None and held[1] > now else None

    def expire(self, now: float) -> None:
        for key in [k for k, (_, e) in self._immutable.items() if e <= now]:
            del self._immutable[key]
        for key in [k for k, (_, e) in self._mutable.items() if e <= now]:
            del self._mutable[key]
        for info_hash in list(self._peers):
            peers = self._peers[info_hash]
            for addr in [a for a, e in peers.items() if e <= now]:
                del peers[addr]
            if not peers:
                del self._peers[info_hash]

    def __len__(self) -> int:
        return len(self._immutable) + len(self._mutable) + len(self._peers)


__all__ = ["ItemRefused", "ItemStore"]
