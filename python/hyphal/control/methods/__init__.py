"""Every control method, registered on import (see :mod:`.registry`)."""

from __future__ import annotations

from hyphal.control.methods import files, groups, store
from hyphal.control.methods.registry import METHODS, Call, lookup

__all__ = ["METHODS", "Call", "files", "groups", "lookup", "store"]
