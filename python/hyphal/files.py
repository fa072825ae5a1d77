"""Crash-safe file writes shared by the stores."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from hyphal import aead
from hyphal.errors import DecodeError, DecryptionError, InvalidInput

LOCK_NAME = "lock"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``: a crash leaves the old file or the new one, never a mix.

    A temporary file beside it is written and fsynced, renamed over ``path``,
    and the directory fsynced so the rename itself survives.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_dir(path: Path, what: str = "a node") -> Iterator[None]:
    """Hold ``path``'s lock file while inside: one process at a time uses the directory.

    The stores in a data dir assume a single process; a second one gets
    :class:`~hyphal.errors.InvalidInput` instead of corrupting them. The
    kernel drops the lock when the process dies, so a crash leaves nothing stale.
    """
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInput(f"{what} is already running in {path}") from None
        yield
    finally:
        os.close(fd)


def read_sealed_list(path: Path, key: bytes, magic: bytes, what: str) -> list[object]:
    """The JSON list sealed in ``path`` by :func:`write_sealed_list`; ``[]`` if there is no file.

    A damaged file is an error (:class:`DecodeError`), and one sealed under another key a
    :class:`DecryptionError`: never a silent reset.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    head = len(magic) + aead.NONCE_SIZE
    if not data.startswith(magic) or len(data) < head + aead.TAG_SIZE:
        raise DecodeError(f"{path} is not a hyphal {what} file")
    try:
        plain = aead.open(key, data[len(magic) : head], data[head:], magic)
    except DecryptionError:
        raise DecryptionError(f"{path} does not open with this node's identity") from None
    try:
        entries = json.loads(plain)
    except ValueError as exc:
        raise DecodeError(f"{path}: {exc}") from None
    if not isinstance(entries, list):
        raise DecodeError(f"{path}: not a list of {what}")
    return entries


def write_sealed_list(path: Path, key: bytes, magic: bytes, entries: list[object]) -> None:
    """``magic ‖ nonce ‖ XChaCha20-Poly1305(json(entries), ad=magic)``, written atomically."""
    plain = json.dumps(entries).encode("utf-8")
    nonce = secrets.token_bytes(aead.NONCE_SIZE)
    write_atomically(path, magic + nonce + aead.seal(key, nonce, plain, magic))


__all__ = [
    "LOCK_NAME",
    "exclusive_dir",
    "fsync_dir",
    "read_sealed_list",
    "write_atomically",
    "write_sealed_list",
]
