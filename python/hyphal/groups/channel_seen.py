"""The seen-message window on disk, so a message replayed after a restart is refused.

``messages-seen`` in the data dir (docs/PROTOCOL.md §16.3) is
``"hyphalM1"`` followed by one 56-byte entry per accepted message,
``sender[32] ‖ id[16] ‖ u64le(expires_ms)``, appended (and flushed to the
OS) before the message is delivered or forwarded. Loading drops a torn last
entry and every expired one, and rewrites the file compacted; it is
compacted again whenever it has grown to twice what is live.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import BinaryIO

from hyphal.files import write_atomically

log = logging.getLogger("hyphal.groups.channel")

MAGIC = b"hyphalM1"
ENTRY = struct.Struct("<32s16sQ")
COMPACT_SLACK = 1024


class SeenLog:
    """Appends accepted ``(sender, id, expires_ms)`` to the file; :meth:`load` reads it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._appended = 0

    def load(self, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        """The entries not expired at ``now_ms``; the file is rewritten with only those."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        entries: list[tuple[bytes, bytes, int]] = []
        if data and not data.startswith(MAGIC):
            log.warning("%s is not a seen-message file; starting an empty window", self.path)
        elif data:
            body = data[len(MAGIC) :]
            whole = len(body) - len(body) % ENTRY.size  # a crash mid-append leaves a torn tail
            for sender, id_, expires in ENTRY.iter_unpack(body[:whole]):
                if expires >= now_ms:
                    entries.append((sender, id_, expires))
        self.rewrite(entries)
        return entries

    def rewrite(self, entries: list[tuple[bytes, bytes, int]]) -> None:
        """Replace the file with ``entries`` (atomically) and append after them from now on."""
        self.close()
        write_atomically(self.path, MAGIC + b"".join(ENTRY.pack(*e) for e in entries))
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for appends until close()
        self._appended = len(entries)

    def append(self, sender: bytes, id_: bytes, expires_ms: int, live: int) -> bool:
        """Record one accepted message; returns True when the file should be compacted
        (``live``: the entries the window holds now)."""
        if self._file is None:
            raise ValueError("the seen-message log is closed")
        self._file.write(ENTRY.pack(sender, id_, expires_ms))
        self._file.flush()
        self._appended += 1
        return self._appended > 2 * live + COMPACT_SLACK

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


__all__ = ["ENTRY", "MAGIC", "SeenLog"]
