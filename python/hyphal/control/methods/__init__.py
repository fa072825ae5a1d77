"""Every control method, registered on import (see :mod:`.registry`)."""

from __future__ import annotations

from hyphal.control.methods import blobs, dht, feeds, files, groups, records, values
from hyphal.control.methods import messages as messages
from hyphal.control.methods import pairing as pairing
from hyphal.control.methods import secrets as secrets
from hyphal.control.methods.registry import METHODS, Call, lookup

__all__ = [
    "METHODS",
    "Call",
    "blobs",
    "dht",
    "feeds",
    "files",
    "groups",
    "lookup",
    "messages",
    "pairing",
    "records",
    "secrets",
    "values",
]
