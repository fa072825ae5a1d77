"""Wire framing, sans-I/O: LEB128 integers, handshake messages and encrypted frames.

Handshake messages travel as ``u16le length ‖ message`` (Noise's own limit of
65535 bytes). After the handshake every frame is ``u32le length ‖ ciphertext``
where the ciphertext is ChaCha20-Poly1305 (sealed in the Rust core) of the
frame's plaintext under the Noise transport key, with the implicit counter
nonce. Because the nonce is never sent, a replayed, reordered, dropped or
spliced frame fails to open.

Decoders are fed whatever bytes arrived and return complete items. They never
buffer more than one frame's worth: an oversize length is rejected as soon as
its prefix arrives. Every failure is a :class:`~hyphal.errors.HyphalError`,
and a decoder that failed stays failed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from typing_extensions import Buffer

from hyphal.buffers import total_size
from hyphal.errors import DecodeError, DecryptionError, InvalidInput, ProtocolError
from hyphal.net.noise import MAX_MESSAGE_LEN, TAG_LEN, CipherState

DEFAULT_MAX_FRAME = 4 * 1024 * 1024
"""Default limit on a frame's plaintext, in bytes."""
MIN_MAX_FRAME = 4096
"""No side may limit frames below this: every control message must fit in one."""
MAX_MAX_FRAME = 2**32 - 1 - TAG_LEN
"""The u32 length prefix counts the ciphertext, tag included."""

FRAME_HEADER_LEN = 4
_MIN_VIEW_PIECE = 16 * 1024  # smaller pieces of a held frame are copied together
HANDSHAKE_HEADER_LEN = 2
MAX_VARINT_LEN = 10

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


# -- LEB128 ---------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 of ``0 <= value < 2^64``, least significant group first."""
    if value < 0x80:
        if value < 0:
            raise InvalidInput("a varint is unsigned")
        return bytes((value,))
    if value >= 1 << 64:
        raise InvalidInput("a varint is below 2^64")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: Buffer, pos: int) -> tuple[int, int]:
    """Decode the varint at ``data[pos:]``; returns ``(value, next position)``.

    Only the canonical (shortest) encoding of a value below 2^64 is accepted,
    so every value has exactly one encoding.
    """
    view = memoryview(data)
    end = len(view)
    if pos >= end:
        raise DecodeError("truncated varint")
    byte = view[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if pos - start >= MAX_VARINT_LEN:
            raise DecodeError("varint longer than 10 bytes")
    if byte == 0:
        raise DecodeError("non-canonical varint (trailing zero group)")
    if value >= 1 << 64:
        raise DecodeError("varint of 2^64 or more")
    return value, pos


# -- handshake messages ----------------------------------------------------------


def encode_handshake_message(message: Buffer) -> bytes:
    """``u16le length ‖ message``."""
    size = memoryview(message).nbytes
    if size > MAX_MESSAGE_LEN:
        raise InvalidInput(f"handshake message of {size} bytes exceeds {MAX_MESSAGE_LEN}")
    return _U16.pack(size) + bytes(message)


class HandshakeMessageDecoder:
    """Splits the handshake byte stream into messages; keeps what follows them.

    The bytes after the last handshake message are the first transport frames
    (a peer may send them in the same segment); :meth:`take_rest` hands them
    on to the :class:`FrameDecoder`.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: Buffer) -> None:
        self._buffer += data

    def next_message(self) -> bytes | None:
        """The next complete message, or ``None`` until more bytes arrive."""
        if len(self._buffer) < HANDSHAKE_HEADER_LEN:
            return None
        (size,) = _U16.unpack_from(self._buffer)
        end = HANDSHAKE_HEADER_LEN + size
        if len(self._buffer) < end:
            return None
        message = bytes(self._buffer[HANDSHAKE_HEADER_LEN:end])
        del self._buffer[:end]
        return message

    def take_rest(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


# -- transport frames ------------------------------------------------------------


def check_max_frame(max_frame: int) -> int:
    if not MIN_MAX_FRAME <= max_frame <= MAX_MAX_FRAME:
        raise InvalidInput(f"max_frame must be in [{MIN_MAX_FRAME}, {MAX_MAX_FRAME}], got {max_frame}")
    return max_frame


class FrameEncoder:
    """Seals frame plaintexts with one transport cipher.

    ``max_frame`` is the limit on a plaintext: the smaller of this side's and
    the peer's limits, since the peer rejects anything larger.
    """

    __slots__ = ("_cipher", "max_frame")

    def __init__(self, cipher: CipherState, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not cipher.has_key():
            raise InvalidInput("a frame encoder needs a keyed cipher")
        self._cipher = cipher
        self.max_frame = check_max_frame(max_frame)

    @property
    def nonce(self) -> int:
        """The nonce the next frame is sealed with (its position in the stream)."""
        return self._cipher.nonce

    def encode_parts(self, parts: Sequence[Buffer]) -> bytes:
        """One whole frame, ``u32le length ‖ ciphertext``, of the concatenated ``parts``.

        The pieces are gathered straight into the sealed output, which also
        holds the length prefix: a frame costs one copy of its bytes.
        """
        size = total_size(parts)
        if size > self.max_frame:
            raise InvalidInput(f"frame of {size} bytes exceeds the limit of {self.max_frame}")
        return self._cipher.encrypt_parts_with_ad(b"", parts, _U32.pack(size + TAG_LEN))

    def encode(self, plaintext: Buffer) -> bytes:
        """One whole frame: ``u32le length ‖ ciphertext``."""
        return self.encode_parts([plaintext])


class FrameDecoder:
    """Opens frames from a byte stream.

    :meth:`feed` returns the plaintexts of every frame completed by the new
    bytes, in order. It raises :class:`ProtocolError` for a length prefix over
    the limit (before buffering the frame), :class:`DecodeError` for one too
    short to hold a tag, and :class:`DecryptionError` for a frame that does
    not open (tampered, replayed, reordered or from another session).
    :meth:`eof` raises :class:`DecodeError` if the stream ended inside a frame.
    """

    __slots__ = ("_cipher", "_failed", "_held", "_limit", "_need", "_parts", "max_frame")

    def __init__(self, cipher: CipherState, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not cipher.has_key():
            raise InvalidInput("a frame decoder needs a keyed cipher")
        self._cipher = cipher
        self.max_frame = check_max_frame(max_frame)
        self._limit = max_frame + TAG_LEN
        # The pieces of a frame not yet complete: large ones as views of the (immutable)
        # chunks they came in, so a frame that spans several reads is opened from its pieces
        # without being joined; small ones copied together into one bytearray, so a peer
        # that trickles bytes cannot make us hold a view object per byte.
        self._parts: list[memoryview | bytearray] = []
        self._held = 0
        self._need = 0  # header + ciphertext of the held frame, once its header is in
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes held of a frame not yet complete."""
        return self._held

    def feed(self, data: Buffer) -> list[bytes]:
        if self._failed:
            raise ProtocolError("the frame decoder already failed")
        try:
            view = memoryview(data)
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            # A caller's mutable buffer may change after we return: hold a copy of it instead.
            owned = isinstance(data, bytes)
            out: list[bytes] = []
            if self._parts:
                rest = self._complete_held(view, owned, out)
                if rest is None:
                    return out
                view = rest
            used = self._open_frames(view, out)
            if used < len(view):
                self._hold(view[used:], owned)
            return out
        except BaseException:
            self._failed = True
            raise

    def eof(self) -> None:
        """The stream ended: fine at a frame boundary, a :class:`DecodeError` inside a frame."""
        if self._held:
            self._failed = True
            raise DecodeError(f"stream ended inside a frame ({self._held} bytes buffered)")

    def _hold(self, piece: memoryview, owned: bool) -> None:
        if owned and len(piece) >= _MIN_VIEW_PIECE:
            self._parts.append(piece)
        elif self._parts and type(self._parts[-1]) is bytearray:
            self._parts[-1] += piece
        else:
            self._parts.append(bytearray(piece))
        self._held += len(piece)
        if not self._need and self._held >= FRAME_HEADER_LEN:
            header = b"".join(bytes(p[:FRAME_HEADER_LEN]) for p in self._parts)
            (size,) = _U32.unpack_from(header)
            self._check_size(size)
            self._need = FRAME_HEADER_LEN + size

    def _complete_held(self, view: memoryview, owned: bool, out: list[bytes]) -> memoryview | None:
        """Add ``view`` to the held frame; once it is whole, open it and return what follows it."""
        before = self._held
        self._hold(view, owned)
        need = self._need
        if not need or self._held < need:
            return None
        # Every earlier piece lies inside this frame (it was incomplete without ``view``).
        pieces: list[memoryview] = []
        pos = 0
        for part in self._parts:
            lo, hi = max(FRAME_HEADER_LEN - pos, 0), min(need - pos, len(part))
            if lo < hi:
                pieces.append(memoryview(part)[lo:hi])
            pos += len(part)
        self._parts, self._held, self._need = [], 0, 0
        try:
            out.append(self._cipher.decrypt_parts_with_ad(b"", pieces))
        except DecryptionError as exc:
            raise self._does_not_open() from exc
        return view[need - before :]

    def _does_not_open(self) -> DecryptionError:
        return DecryptionError(f"frame {self._cipher.nonce} does not open (tampered, replayed or reordered)")

    def _check_size(self, size: int) -> None:
        if size > self._limit:
            raise ProtocolError(f"frame of {size - TAG_LEN} bytes exceeds the limit of {self.max_frame}")
        if size < TAG_LEN:
            raise DecodeError(f"frame of {size} bytes is too short to hold a tag")

    def _open_frames(self, view: memoryview, out: list[bytes]) -> int:
        """Open every complete frame in ``view`` into ``out``; returns the bytes consumed."""
        pos = 0
        end = len(view)
        decrypt = self._cipher.decrypt_with_ad
        while end - pos >= FRAME_HEADER_LEN:
            (size,) = _U32.unpack_from(view, pos)
            self._check_size(size)
            start = pos + FRAME_HEADER_LEN
            if end - start < size:
                break
            try:
                out.append(decrypt(b"", view[start : start + size]))
            except DecryptionError as exc:
                raise self._does_not_open() from exc
            pos = start + size
        return pos


__all__ = [
    "DEFAULT_MAX_FRAME",
    "FRAME_HEADER_LEN",
    "HANDSHAKE_HEADER_LEN",
    "MAX_MAX_FRAME",
    "MIN_MAX_FRAME",
    "FrameDecoder",
    "FrameEncoder",
    "HandshakeMessageDecoder",
    "check_max_frame",
    "decode_varint",
    "encode_handshake_message",
    "encode_varint",
]
