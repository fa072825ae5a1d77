"""The one wire codec: a bounds-checked :class:`Reader` and a :class:`Writer` for message bytes.

Every protocol's ``messages.py`` (feed replication, blobs, the DHT) reads
and writes its layouts through these two, so the bounds rules live in one
place: integers are little-endian; byte strings are fixed-size or carry a
``u8``, ``u16le`` or ``u32le`` length prefix checked against a caller-given
maximum *before* anything is sliced or allocated. A short read, an over-limit
length or trailing bytes raise :class:`~hyphal.errors.DecodeError` naming the
field; a value that does not fit its field raises
:class:`~hyphal.errors.InvalidInput`, so we never send what a peer must reject.

A :class:`Reader` over ``bytes`` returns ``bytes``; over a ``memoryview`` it
returns views of the same buffer, so a large message (a feed DATA reply) is
never copied on the way in. The fields are method calls on purpose-built
precompiled :class:`struct.Struct` objects: messages decode on the hot paths
of replication and of the DHT, so there is no per-field indirection beyond
the call itself.

None of the current protocols uses varints (``hyphal.net.frames`` keeps its
own for frame lengths), so there are none here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from typing_extensions import Buffer

from hyphal.errors import DecodeError, InvalidInput

B = TypeVar("B", bytes, memoryview)
"""What a Reader reads from, and so what its byte fields are."""
T = TypeVar("T")

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_u16_from = _U16.unpack_from
_u32_from = _U32.unpack_from
_u64_from = _U64.unpack_from


def byte_view(data: Buffer) -> memoryview:
    """``data`` as a flat memoryview of bytes, uncopied; DecodeError if it is not contiguous bytes."""
    try:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1 or view.format != "B" or not view.c_contiguous:
            view = view.cast("B")
    except (TypeError, ValueError) as exc:
        raise DecodeError("message is not a contiguous byte buffer") from exc
    return view


class Reader(Generic[B]):
    """Reads fields from ``data`` front to back; ``what`` names the whole thing in errors."""

    __slots__ = ("_data", "_end", "_pos", "_what")

    def __init__(self, data: B, what: str = "message") -> None:
        self._data: B = data
        self._pos = 0
        self._end = len(data)
        self._what = what

    # -- position -------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Bytes read so far."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return self._end - self._pos

    def done(self) -> bool:
        """Every byte has been read."""
        return self._pos == self._end

    def expect_end(self) -> None:
        """DecodeError unless every byte has been read: formats are exact, trailing bytes are malformed."""
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} trailing bytes after {self._what}")

    def _short(self, field: str, size: int) -> DecodeError:
        return DecodeError(
            f"{self._what} truncated: {field} needs {size} bytes, {self._end - self._pos} left"
        )

    # -- integers -------------------------------------------------------------------

    def u8(self, field: str) -> int:
        pos = self._pos
        if pos >= self._end:
            raise self._short(field, 1)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, field: str) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            raise self._short(field, 2)
        self._pos = pos + 2
        value: int = _u16_from(self._data, pos)[0]
        return value

    def u32(self, field: str) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            raise self._short(field, 4)
        self._pos = pos + 4
        value: int = _u32_from(self._data, pos)[0]
        return value

    def u64(self, field: str) -> int:
        pos = self._pos
        if pos + 8 > self._end:
            raise self._short(field, 8)
        self._pos = pos + 8
        value: int = _u64_from(self._data, pos)[0]
        return value

    def unpack(self, layout: struct.Struct, field: str) -> tuple[Any, ...]:
        """Several fixed-width fields at once, as one precompiled little-endian ``layout``."""
        pos = self._pos
        end = pos + layout.size
        if end > self._end:
            raise self._short(field, layout.size)
        self._pos = end
        return layout.unpack_from(self._data, pos)

    # -- byte strings ---------------------------------------------------------------

    def take(self, size: int, field: str) -> B:
        """``size`` bytes (a fixed-size field, or a run of fixed records)."""
        pos = self._pos
        end = pos + size
        if size < 0 or end > self._end:
            raise self._short(field, size)
        self._pos = end
        return self._data[pos:end]

    # The three length-prefixed forms are written out in full, not built on u8/u16/u32 and take:
    # one call per field matters where every DHT datagram is decoded.

    def bytes8(self, limit: int, field: str, *, min_size: int = 0) -> B:
        """``u8 size ‖ bytes`` with ``min_size <= size <= limit``."""
        data, pos = self._data, self._pos
        if pos >= self._end:
            raise self._short(field, 1)
        size = data[pos]
        pos += 1
        # The size is checked before anything is sliced: a lying prefix costs nothing.
        if not min_size <= size <= limit:
            raise _outside(field, size, min_size, limit)
        end = pos + size
        if end > self._end:
            self._pos = pos
            raise self._short(field, size)
        self._pos = end
        return data[pos:end]

    def bytes16(self, limit: int, field: str, *, min_size: int = 0) -> B:
        """``u16le size ‖ bytes`` with ``min_size <= size <= limit``."""
        data, pos = self._data, self._pos
        if pos + 2 > self._end:
            raise self._short(field, 2)
        size = data[pos] | data[pos + 1] << 8
        pos += 2
        if not min_size <= size <= limit:
            raise _outside(field, size, min_size, limit)
        end = pos + size
        if end > self._end:
            self._pos = pos
            raise self._short(field, size)
        self._pos = end
        return data[pos:end]

    def bytes32(self, limit: int, field: str, *, min_size: int = 0) -> B:
        """``u32le size ‖ bytes`` with ``min_size <= size <= limit``."""
        data, pos = self._data, self._pos
        if pos + 4 > self._end:
            raise self._short(field, 4)
        size: int = _u32_from(data, pos)[0]
        pos += 4
        if not min_size <= size <= limit:
            raise _outside(field, size, min_size, limit)
        end = pos + size
        if end > self._end:
            self._pos = pos
            raise self._short(field, size)
        self._pos = end
        return data[pos:end]

    def bytes32_run(self, count: int, limit: int, field: str) -> tuple[B, ...]:
        """``count`` ``u32le size ‖ bytes`` strings in a row, each at most ``limit``.

        One loop over locals rather than ``count`` method calls: a feed DATA
        reply's blocks, the hot loop of a download.
        """
        data, pos, end = self._data, self._pos, self._end
        out: list[B] = []
        for _ in range(count):
            # Each prefix is read before its bytes, so a lying count fails on truncation
            # after at most the message's own length of work.
            if pos + 4 > end:
                self._pos = pos
                raise self._short(field, 4)
            (size,) = _u32_from(data, pos)
            pos += 4
            if size > limit:
                raise _outside(field, size, 0, limit)
            if pos + size > end:
                self._pos = pos
                raise self._short(field, size)
            out.append(data[pos : pos + size])
            pos += size
        self._pos = pos
        return tuple(out)

    def rest(self, field: str, limit: int | None = None) -> B:
        """Every byte left (a trailing field whose size is the message's), at most ``limit``."""
        size = self._end - self._pos
        if limit is not None and size > limit:
            raise _outside(field, size, 0, limit)
        return self.take(size, field)

    def parse(self, decode: Callable[[B, int], tuple[T, int]]) -> T:
        """A field with its own decoder ``decode(data, offset) -> (value, offset after it)``.

        The decoder bounds-checks against ``len(data)``, the reader's end.
        """
        value, self._pos = decode(self._data, self._pos)
        return value


def _outside(field: str, size: int, min_size: int, limit: int) -> DecodeError:
    return DecodeError(f"{field} of {size} bytes outside its limits {min_size}..{limit}")


class Writer:
    """Builds one message field by field; :meth:`to_bytes` joins it, :meth:`parts` leaves it in pieces."""

    __slots__ = ("_parts",)

    def __init__(self, *start: Buffer) -> None:
        """``start``: bytes the message begins with as they are (a precomputed type byte, say)."""
        self._parts: list[Buffer] = list(start)

    # -- integers -------------------------------------------------------------------

    def u8(self, value: int, field: str) -> Writer:
        return self._int(_U8, value, field)

    def u16(self, value: int, field: str) -> Writer:
        return self._int(_U16, value, field)

    def u32(self, value: int, field: str) -> Writer:
        return self._int(_U32, value, field)

    def u64(self, value: int, field: str) -> Writer:
        return self._int(_U64, value, field)

    def _int(self, layout: struct.Struct, value: int, field: str) -> Writer:
        try:
            self._parts.append(layout.pack(value))
        except struct.error as exc:
            raise InvalidInput(f"{field} {value!r} does not fit its {layout.size}-byte field") from exc
        return self

    def pack(self, layout: struct.Struct, field: str, *values: Any) -> Writer:
        """Several fixed-width fields at once, as one precompiled little-endian ``layout``."""
        try:
            self._parts.append(layout.pack(*values))
        except struct.error as exc:
            raise InvalidInput(f"{field} {values!r} do not fit {layout.format!r}") from exc
        return self

    # -- byte strings ---------------------------------------------------------------

    def raw(self, data: Buffer) -> Writer:
        """``data`` as it is, uncopied until :meth:`to_bytes` (a fixed-size or trailing field)."""
        self._parts.append(data)
        return self

    def fixed(self, data: Buffer, size: int, field: str) -> Writer:
        """Exactly ``size`` bytes."""
        if memoryview(data).nbytes != size:
            raise InvalidInput(f"{field} must be {size} bytes")
        self._parts.append(data)
        return self

    def bytes8(self, data: Buffer, limit: int, field: str, *, min_size: int = 0) -> Writer:
        """``u8 size ‖ data``."""
        return self._sized(_U8, data, min(limit, 0xFF), min_size, field)

    def bytes16(self, data: Buffer, limit: int, field: str, *, min_size: int = 0) -> Writer:
        """``u16le size ‖ data``."""
        return self._sized(_U16, data, min(limit, 0xFFFF), min_size, field)

    def bytes32(self, data: Buffer, limit: int, field: str, *, min_size: int = 0) -> Writer:
        """``u32le size ‖ data``."""
        return self._sized(_U32, data, min(limit, 0xFFFFFFFF), min_size, field)

    def _sized(self, prefix: struct.Struct, data: Buffer, limit: int, min_size: int, field: str) -> Writer:
        size = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        if not min_size <= size <= limit:
            raise InvalidInput(f"{field} of {size} bytes outside its limits {min_size}..{limit}")
        self._parts += (prefix.pack(size), data)
        return self

    # -- the result -----------------------------------------------------------------

    def parts(self) -> list[Buffer]:
        """The message as pieces, none copied (for ``Channel.send``, which takes pieces)."""
        return self._parts

    def size(self) -> int:
        return sum(memoryview(p).nbytes for p in self._parts)

    def to_bytes(self) -> bytes:
        return b"".join(self._parts)


__all__ = ["Reader", "Writer", "byte_view"]
