"""Where feeds and signed values are kept: the interface and the SQLite backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.storage.base import FeedRecord, FeedWrite, Storage
    from hyphal.storage.sqlite import SqliteStorage

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "FeedRecord": ".base",
        "FeedWrite": ".base",
        "Storage": ".base",
        "SqliteStorage": ".sqlite",
    },
)

__all__ = ["FeedRecord", "FeedWrite", "SqliteStorage", "Storage"]
