"""Blobs: content-addressed by plain BLAKE3, verified streaming over 16 KiB groups.

- :mod:`~hyphal.blobs.blob_store`: the store (import, export, partial blobs, range reads, tags, GC),
  over its files (:mod:`~hyphal.blobs.files`) and its SQLite catalog (:mod:`~hyphal.blobs.catalog`).
- :mod:`~hyphal.blobs.collection`: collections, blobs mapping names to hashes.
- :mod:`~hyphal.blobs.private`: private blobs, stored and served as ciphertext only.
- :mod:`~hyphal.blobs.messages`, :mod:`~hyphal.blobs.transfer`: the transfer protocol and the
  sans-I/O multi-provider download.
- :mod:`~hyphal.blobs.provider`, :mod:`~hyphal.blobs.downloader`: both over ``hyphal.net`` connections.

Formats and messages: docs/PROTOCOL.md §12.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.blobs.actions import Progress
    from hyphal.blobs.blob_store import GROUP_SIZE, BlobFormat, BlobInfo, BlobStore, PartialBlob, TempTag
    from hyphal.blobs.collection import Collection
    from hyphal.blobs.downloader import BlobDownloader, DownloadFailed, download_blob
    from hyphal.blobs.private import PrivateBlob
    from hyphal.blobs.provider import PROTOCOL, BlobProvider, ProviderConfig
    from hyphal.blobs.transfer import Download, DownloadConfig

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Collection": ".collection",
        "BlobDownloader": ".downloader",
        "DownloadFailed": ".downloader",
        "download_blob": ".downloader",
        "PrivateBlob": ".private",
        "PROTOCOL": ".provider",
        "BlobProvider": ".provider",
        "ProviderConfig": ".provider",
        "GROUP_SIZE": ".blob_store",
        "BlobFormat": ".blob_store",
        "BlobInfo": ".blob_store",
        "BlobStore": ".blob_store",
        "PartialBlob": ".blob_store",
        "TempTag": ".blob_store",
        "Download": ".transfer",
        "DownloadConfig": ".transfer",
        "Progress": ".actions",
    },
)

__all__ = [
    "GROUP_SIZE",
    "PROTOCOL",
    "BlobDownloader",
    "BlobFormat",
    "BlobInfo",
    "BlobProvider",
    "BlobStore",
    "Collection",
    "Download",
    "DownloadConfig",
    "DownloadFailed",
    "PartialBlob",
    "PrivateBlob",
    "Progress",
    "ProviderConfig",
    "TempTag",
    "download_blob",
]
