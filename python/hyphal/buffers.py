"""Helpers for passing bytes along without copying them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from typing_extensions import Buffer

Parts: TypeAlias = "list[Buffer] | tuple[Buffer, ...]"
"""One message given as consecutive pieces: joined only where it must be (sealing, say)."""


def frozen(data: Buffer) -> Buffer:
    """``data`` itself if nobody can change it later (``bytes``, or a read-only view of
    ``bytes``), else an immutable copy. For data that is checked now and used later."""
    if type(data) is bytes or (type(data) is memoryview and data.readonly and type(data.obj) is bytes):
        return data
    return bytes(data)


def nbytes(data: Buffer) -> int:
    return len(data) if type(data) is bytes else memoryview(data).nbytes


def total_size(parts: Sequence[Buffer]) -> int:
    return sum(nbytes(p) for p in parts)


__all__ = ["Parts", "frozen", "nbytes", "total_size"]
