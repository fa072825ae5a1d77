"""Where feeds and signed values are kept: the interface and the SQLite backend.

:mod:`~hyphal.storage.database` opens every SQLite file hyphal keeps (feeds, the blob catalog,
DHT records): WAL, busy timeout, durability and schema versions.
"""

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
