"""Groups of devices: invites, members' data repos and their collections (docs/PROTOCOL.md §14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.groups.messages import Delete, Put, check_name, decode_op
    from hyphal.groups.repo import Collection, Entry

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Collection": ".repo",
        "Delete": ".messages",
        "Entry": ".repo",
        "Put": ".messages",
        "check_name": ".messages",
        "decode_op": ".messages",
    },
)

__all__ = ["Collection", "Delete", "Entry", "Put", "check_name", "decode_op"]
