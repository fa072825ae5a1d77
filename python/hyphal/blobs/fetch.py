"""Fetching a blob the local store lacks, once per hash however many callers want it.

A node owns one :class:`BlobFetcher`. Everything that needs a blob it does
not hold whole (a group's file fetch, a sync, a backup's mirror, the control
API's ``blob.get``) asks the fetcher, so a second caller wanting a blob that
is already on its way waits for that download instead of starting another
one over the same peers. Each caller names where to fetch from (a group: its
member connections; ``blob.get``: every connection) and the tag that keeps
the blob from garbage collection once it is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anyio

from hyphal.blobs.actions import Progress
from hyphal.blobs.blob_store import BlobStore
from hyphal.blobs.downloader import DownloadFailed, download_blob
from hyphal.blobs.transfer import DownloadConfig
from hyphal.errors import HyphalError, NotAvailable
from hyphal.net.connection import Connection

log = logging.getLogger("hyphal.blobs")

STRIPE_MIN = 1 << 20
"""Blobs smaller than this are fetched from one provider; larger ones striped over all."""
SINGLE_PROVIDER = DownloadConfig(no_provider_timeout=0.05)
"""A one-provider attempt gives up at once when its provider lacks the blob."""

Providers = Callable[[], Sequence[Connection]]
"""Where to fetch from, asked only when a download starts (it may raise :class:`NotAvailable`)."""


class BlobFetcher:
    """Makes blobs complete in ``store``, one download per hash at a time."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._fetches: dict[bytes, anyio.Event] = {}
        self._next_provider = 0

    def has(self, blob_hash: bytes) -> bool:
        """The store holds the whole blob."""
        info = self.store.info(blob_hash)
        return info is not None and info.complete

    def fetching(self) -> frozenset[bytes]:
        """Hashes being downloaded now."""
        return frozenset(self._fetches)

    async def fetch(
        self,
        blob_hash: bytes,
        providers: Providers,
        *,
        tag: str,
        what: str,
        size: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Make ``blob_hash`` complete here and tag it ``tag``; returns whether this call
        downloaded it (not if it was here already, or another call's download brought it).

        A fetch of a blob being fetched already waits for that download, and
        tries one of its own only if that one failed. ``size`` (when the caller
        knows it) picks one provider for a small blob, and is what ``on_bytes``
        counts up to: a private blob's ciphertext is a little longer than its
        file. ``what`` names the blob in errors; ``timeout`` bounds the download,
        not the wait for another's.
        """
        waited = False
        while not self.has(blob_hash) and blob_hash in self._fetches:
            waited = True
            await self._fetches[blob_hash].wait()
        if self.has(blob_hash):
            if waited:
                # The first caller's tag keeps it now; ours keeps it for our reason too.
                self.store.set_tag(tag, blob_hash)
            if on_bytes is not None and size is not None:
                on_bytes(size)
            return False
        done = self._fetches[blob_hash] = anyio.Event()
        try:
            await self._download(blob_hash, providers(), tag, what, size, on_bytes, timeout)
        finally:
            del self._fetches[blob_hash]
            done.set()
        return True

    async def _download(
        self,
        blob_hash: bytes,
        providers: Sequence[Connection],
        tag: str,
        what: str,
        size: int | None,
        on_bytes: Callable[[int], None] | None,
        timeout: float | None,
    ) -> None:
        providers = list(providers)
        if not providers:
            raise NotAvailable(f"{what}: no peer that could serve it is connected")
        seen = 0

        def progress(p: Progress) -> None:
            nonlocal seen
            done = p.bytes_done if size is None else min(p.bytes_done, size)
            if on_bytes is not None and done > seen:
                on_bytes(done - seen)
            seen = max(seen, done)

        attempts: list[tuple[list[Connection], DownloadConfig | None]] = [(providers, None)]
        if size is not None and size < STRIPE_MIN and len(providers) > 1:
            # A small blob is a round trip or two: striping it would cost a channel per
            # provider for nothing. Ask one (in turn, to spread the load), and the rest
            # at once if it says it lacks the blob.
            self._next_provider += 1
            one = providers[self._next_provider % len(providers)]
            attempts.insert(0, ([one], SINGLE_PROVIDER))
        for attempt, config in attempts:
            try:
                with await download_blob(
                    self.store, blob_hash, attempt, config=config, on_progress=progress, timeout=timeout
                ):
                    # Tagged before the temp tag goes, so garbage collection never sees it bare.
                    self.store.set_tag(tag, blob_hash)
                break
            except TimeoutError:
                raise NotAvailable(f"{what}: fetching it timed out") from None
            except (HyphalError, BaseExceptionGroup) as exc:
                # The downloader's tasks may wrap its typed error in a group: unwrap it.
                error = _typed_error(exc)
                if error is None:
                    raise
                if not isinstance(error, DownloadFailed) or attempt is providers:
                    raise error from None
        if on_bytes is not None and size is not None and size > seen:
            on_bytes(size - seen)


def _typed_error(exc: BaseException) -> HyphalError | None:
    """``exc`` if it is one of our errors, or the first of a group made only of them."""
    if isinstance(exc, HyphalError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        typed, rest = exc.split(HyphalError)
        if typed is not None and rest is None:
            return _typed_error(typed.exceptions[0])
    return None


__all__ = ["SINGLE_PROVIDER", "STRIPE_MIN", "BlobFetcher", "Providers"]
