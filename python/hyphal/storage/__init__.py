"""Where feeds and signed values are kept: the interface and the SQLite backend."""

from __future__ import annotations

from hyphal.storage.base import FeedRecord, FeedWrite, Storage
from hyphal.storage.sqlite import SqliteStorage

__all__ = ["FeedRecord", "FeedWrite", "SqliteStorage", "Storage"]
