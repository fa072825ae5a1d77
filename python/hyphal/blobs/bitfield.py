"""A bitfield of chunk groups: bit ``i`` (byte ``i // 8``, mask ``1 << (i % 8)``) is group ``i``."""

from __future__ import annotations

from collections.abc import Iterator

from hyphal.errors import DecodeError


class GroupBits:
    """Which of ``count`` chunk groups are present."""

    __slots__ = ("_bits", "count", "present")

    def __init__(self, count: int, bits: bytes | None = None, *, full: bool = False) -> None:
        self.count = count
        size = (count + 7) // 8
        if bits is None:
            self._bits = bytearray(b"\xff" * size if full else size)
            if full and count % 8:
                self._bits[-1] = (1 << (count % 8)) - 1
        else:
            if len(bits) != size or (count % 8 and bits[-1] >> (count % 8)):
                raise DecodeError(f"a bitfield of {count} groups is {size} bytes with no bits past the end")
            self._bits = bytearray(bits)
        self.present = sum(b.bit_count() for b in self._bits)

    def __contains__(self, index: int) -> bool:
        return 0 <= index < self.count and bool(self._bits[index >> 3] >> (index & 7) & 1)

    def add(self, index: int) -> bool:
        """Mark ``index``; whether it was new."""
        byte, mask = index >> 3, 1 << (index & 7)
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        self.present += 1
        return True

    @property
    def complete(self) -> bool:
        return self.present == self.count

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def runs(self, present: bool = True, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        """Maximal ``[a, b)`` runs of set (or, with ``present=False``, unset) groups in ``[start, end)``."""
        end = self.count if end is None else min(end, self.count)
        bits = self._bits
        full, empty = (0xFF, 0x00) if present else (0x00, 0xFF)
        i = start
        while i < end:
            byte = bits[i >> 3]
            if byte == empty and i & 7 == 0:
                i += 8
                continue
            if bool(byte >> (i & 7) & 1) != present:
                i += 1
                continue
            a = i
            while i < end:
                byte = bits[i >> 3]
                if byte == full and i & 7 == 0 and i + 8 <= end:
                    i += 8
                elif bool(byte >> (i & 7) & 1) == present:
                    i += 1
                else:
                    break
            yield a, min(i, end)


__all__ = ["GroupBits"]
