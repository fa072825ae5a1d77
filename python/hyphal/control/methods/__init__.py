"""Every control method, registered on import (see :mod:`.registry`)."""

from __future__ import annotations

from hyphal.control.methods import blobs, feeds, files, groups
from hyphal.control.methods import secrets as secrets
from hyphal.control.methods.registry import METHODS, Call, lookup

__all__ = ["METHODS", "Call", "blobs", "feeds", "files", "groups", "lookup", "secrets"]
