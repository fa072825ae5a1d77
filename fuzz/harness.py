"""What a fuzz target is, and the one rule every target checks.

A target feeds one input to one decoder (or a few that read the same kind of
bytes). The input must be decoded, or refused with one of the typed errors of
:mod:`hyphal.errors` the decoder documents (``refuses``). Anything else is a
crash: another exception, an assertion of the target (a decoded message that
does not encode back to the same bytes, say), a hang past libFuzzer's
``-timeout``, or memory past its ``-rss_limit_mb`` (which is how an allocation
sized by an unchecked length field shows).

Inputs of stateful decoders (a stream, a sequence of frames) are split into
pieces by :func:`split`: ``u16le size ‖ bytes`` runs, so a seed is easy to
write with :func:`join` and the fuzzer can still cut and splice it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_U16 = struct.Struct("<H")


@dataclass(frozen=True)
class Target:
    """One fuzz target: ``run`` decodes one input; ``refuses`` are the errors it may answer with."""

    name: str
    run: Callable[[bytes], None]
    refuses: tuple[type[BaseException], ...]
    seeds: Callable[[], Iterable[bytes]]
    """Real encoded messages, made as the tests make them: the seed corpus."""
    max_len: int = 4096
    """libFuzzer's limit on an input (the seeds may be longer)."""


def check(target: Target, data: bytes) -> None:
    """Run one input: return if it was decoded or refused with a documented error, raise otherwise."""
    try:  # noqa: SIM105 - the hot loop of a fuzzer: a plain try costs less than contextlib.suppress
        target.run(data)
    except target.refuses:
        pass


def expect(errors: tuple[type[BaseException], ...], call: Callable[[], object]) -> object:
    """``call()``, where only ``errors`` of the target's refusals are this decoder's documented ones.

    For a target whose modes reach decoders that document different errors: another
    refusal of the target from this decoder is a crash too.
    """
    try:
        return call()
    except errors:
        raise
    except Exception as exc:
        raise AssertionError(f"refused with {type(exc).__name__}, not {errors}: {exc}") from exc


def split(data: bytes, limit: int = 64) -> list[bytes]:
    """``data`` as ``u16le size ‖ bytes`` pieces (at most ``limit``); a short last piece is kept as it is."""
    pieces: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end and len(pieces) < limit:
        if end - pos < 2:
            pieces.append(data[pos:])
            break
        (size,) = _U16.unpack_from(data, pos)
        pos += 2
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


def join(pieces: Iterable[bytes]) -> bytes:
    """The input :func:`split` turns back into ``pieces``."""
    return b"".join(_U16.pack(len(p)) + p for p in pieces)


def quiet() -> None:
    """Decoders log refused peer input; a fuzzer refuses millions of inputs."""
    logging.disable(logging.CRITICAL)


__all__ = ["Target", "check", "expect", "join", "quiet", "split"]
