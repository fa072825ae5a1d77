"""Write tokens: proof that a writer can receive at the address it writes from (BEP 5 style).

A token is ``KH(epoch_secret, address ‖ target)[:16]`` where the epoch
secret is ``KH(secret, u64le(⌊now / rotate⌋))``. A token is accepted in its
epoch and the next, so it lives between one and two rotation periods, and it
is good only for the address it was given to and the target it names.
"""

from __future__ import annotations

import hmac
import struct

from hyphal import _core
from hyphal.dht.records import Addr, encode_address

TOKEN_SIZE = 16
_U64 = struct.Struct("<Q")


class TokenIssuer:
    __slots__ = ("_cache", "_rotate", "_secret")

    def __init__(self, secret: bytes, rotate: float = 300.0) -> None:
        if len(secret) != 32 or rotate <= 0:
            raise ValueError("a 32-byte secret and a positive rotation period")
        self._secret = secret
        self._rotate = rotate
        self._cache: dict[int, bytes] = {}

    def _epoch_secret(self, epoch: int) -> bytes:
        key = self._cache.get(epoch)
        if key is None:
            if len(self._cache) > 4:
                self._cache.clear()
            key = self._cache[epoch] = _core.keyed_hash(self._secret, _U64.pack(max(epoch, 0)))
        return key

    def _token(self, epoch: int, addr: Addr, target: bytes) -> bytes:
        return _core.keyed_hash(self._epoch_secret(epoch), encode_address(addr) + target)[:TOKEN_SIZE]

    def issue(self, addr: Addr, target: bytes, now: float) -> bytes:
        return self._token(int(now // self._rotate), addr, target)

    def check(self, token: bytes, addr: Addr, target: bytes, now: float) -> bool:
        if len(token) != TOKEN_SIZE:
            return False
        epoch = int(now // self._rotate)
        return any(hmac.compare_digest(token, self._token(e, addr, target)) for e in (epoch, epoch - 1))


__all__ = ["TOKEN_SIZE", "TokenIssuer"]
