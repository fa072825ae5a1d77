"""Groups of devices: invites, members' data repos and their collections (docs/PROTOCOL.md §14)."""

from __future__ import annotations

from hyphal.groups.repo import Collection, Delete, Entry, Put, check_name, decode_op

__all__ = ["Collection", "Delete", "Entry", "Put", "check_name", "decode_op"]
