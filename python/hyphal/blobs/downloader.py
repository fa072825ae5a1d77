"""Downloading one blob from several providers over encrypted connections.

Drives a :class:`~hyphal.blobs.transfer.Download` (which decides everything)
over ``hyphal/blob/1`` channels: one channel per provider connection, a
reader task feeding its replies in, an outbox task sending its requests, and
a timer task for the machine's deadlines (the skeleton is
:class:`~hyphal.net.driver.ChannelDriver`'s). Verified groups go to a
:class:`~hyphal.blobs.blob_store.PartialBlob`, flushed (fdatasync, then the
bitfield) every ``flush_bytes`` and at the end, so an interrupted download
resumes from its last flush.

Usage::

    async with BlobDownloader(store, blob_hash, on_progress=print) as dl:
        for conn in connections:
            await dl.add_provider(conn)     # also while it runs
        tag = await dl.wait(timeout=60)     # a temp tag on the complete blob
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from hyphal.blobs.actions import (
    Action,
    Decoded,
    DropProvider,
    Failed,
    Finished,
    Progress,
    Send,
    SizeKnown,
    Store,
)
from hyphal.blobs.blob_store import BlobStore, PartialBlob, TempTag
from hyphal.blobs.provider import CHANNEL_ENDED, PROTOCOL
from hyphal.blobs.transfer import Download, DownloadConfig
from hyphal.errors import DecodeError, HyphalError, NotAvailable, VerificationError
from hyphal.net.connection import Connection
from hyphal.net.driver import ChannelDriver, PeerChannel

log = logging.getLogger("hyphal.blobs")

FLUSH_BYTES = 32 * 2**20
_SEND_ENDED = (anyio.BrokenResourceError, anyio.ClosedResourceError)


class DownloadFailed(NotAvailable):
    """The download stopped before the blob was complete (what was verified is kept)."""


class BlobDownloader(ChannelDriver):
    """Downloads ``hash`` into ``store`` from every provider added; see the module docstring."""

    def __init__(
        self,
        store: BlobStore,
        hash_: bytes,
        *,
        config: DownloadConfig | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        flush_bytes: int = FLUSH_BYTES,
    ) -> None:
        super().__init__()
        self.store = store
        self.hash = bytes(hash_)
        self._tag = store.temp_tag(self.hash)
        self._on_progress = on_progress
        self._flush_bytes = flush_bytes
        self._unflushed = 0
        self._partial: PartialBlob | None = None
        self._done = anyio.Event()
        self._error: str | None = None
        self._events: list[MemoryObjectSendStream[Progress]] = []
        self.last_progress: Progress | None = None
        now = anyio.current_time()
        info = store.info(self.hash)
        if info is not None and info.complete:
            self._machine = Download(self.hash, config=config, now=now)
            self._machine.finished = True
            self._done.set()
        elif info is not None:
            self._partial = store.open_partial(self.hash, info.size)
            self._machine = Download(
                self.hash, size=info.size, have=self._partial.bits, config=config, now=now
            )
        else:
            self._machine = Download(self.hash, config=config, now=now)

    # -- lifecycle -----------------------------------------------------------------

    def _started(self) -> None:
        super()._started()
        self._set_deadline(self._machine.deadline)  # a download with no provider times out too

    async def _stopping(self) -> None:
        if not self._machine.done:
            self._run(self._machine.cancel(anyio.current_time()))
        self._close_partial()
        for send in self._events:
            send.close()
        await super()._stopping()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await super().__aexit__(exc_type, exc, tb)
        finally:
            self._tag.release()

    # -- API -------------------------------------------------------------------------

    @property
    def provider_count(self) -> int:
        return self._machine.provider_count

    async def add_provider(self, connection: Connection) -> None:
        """Use ``connection``'s peer as a provider (at any time, also mid-download)."""
        self._require_running()
        if self._machine.done:
            return
        channel = await connection.open_channel(PROTOCOL, secrets.token_bytes(16))
        peer = self._add_peer(connection, channel)
        self._run(self._machine.add_provider(peer.id, anyio.current_time()))

    def cancel(self) -> None:
        """Stop the download; :meth:`wait` raises :class:`DownloadFailed`. Verified data is kept."""
        self._run(self._machine.cancel(anyio.current_time()))

    async def wait(self, timeout: float | None = None) -> TempTag:
        """Wait for the whole blob; returns a temp tag on it. Raises :class:`DownloadFailed`."""
        with anyio.fail_after(math.inf if timeout is None else timeout):
            await self._done.wait()
        if self._error is not None:
            raise DownloadFailed(f"download of {self.hash.hex()} failed: {self._error}")
        return self.store.temp_tag(self.hash)

    async def events(self) -> AsyncIterator[Progress]:
        """Progress events until the download ends (an async iterator)."""
        send, receive = anyio.create_memory_object_stream[Progress](64)
        self._events.append(send)
        if self._done.is_set():
            send.close()
        async with receive:
            async for event in receive:
                yield event

    # -- tasks -------------------------------------------------------------------------

    async def _reader(self, peer: PeerChannel) -> None:
        reason = "channel closed"
        try:
            await peer.channel.wait_open()
            while True:
                # A large reply stays a view of the frame it came in: verified and stored uncopied.
                message = await peer.channel.receive_buffer()
                job = self._machine.data_job(peer.id, message)
                if job is None:
                    self._run(self._machine.on_message(peer.id, message, anyio.current_time()))
                    continue
                # Verify a large reply on a worker thread: the event loop meanwhile
                # decrypts and verifies what other providers (and this one) send.
                result: Decoded | Exception
                try:
                    result = await anyio.to_thread.run_sync(job.run)
                except (DecodeError, VerificationError) as e:
                    result = e
                self._run(self._machine.on_decoded(job, result, anyio.current_time()))
        except CHANNEL_ENDED as e:
            reason = f"channel ended: {e!r}"
        except HyphalError as e:
            reason = f"{type(e).__name__}: {e}"
            log.warning("blob download: provider %s failed: %s", peer.connection, e)
        finally:
            self._forget(peer, reason)

    def _on_deadline(self) -> None:
        self._run(self._machine.tick(anyio.current_time()))

    def _peer_removed(self, peer: PeerChannel, reason: str) -> None:
        self._run(self._machine.remove_provider(peer.id, reason, anyio.current_time()))
        self._close(peer, reason)

    # -- actions -------------------------------------------------------------------------

    def _run(self, actions: Sequence[Action]) -> None:
        for action in actions:
            self._perform(action)
        self._set_deadline(self._machine.deadline)

    def _perform(self, action: Action) -> None:
        if isinstance(action, Send):
            self._send(action.provider, action.data)
        elif isinstance(action, Store):
            if self._partial is None:
                return  # the download failed at SizeKnown
            try:
                self._unflushed += self._partial.write_verified(action.nodes, action.groups)
                if self._unflushed >= self._flush_bytes:
                    self._partial.flush()
                    self._unflushed = 0
            except OSError as e:
                log.error("blob download %s: storing failed: %s", self.hash.hex(), e)
                self._run(self._machine.cancel(anyio.current_time(), f"storing failed: {e}"))
        elif isinstance(action, Progress):
            self.last_progress = action
            if self._on_progress is not None:
                self._on_progress(action)
            for send in self._events:
                # A slow or gone listener misses events; it never stalls the download.
                with contextlib.suppress(anyio.WouldBlock, *_SEND_ENDED):
                    send.send_nowait(action)
        elif isinstance(action, SizeKnown):
            try:
                self._partial = self.store.open_partial(self.hash, action.size)
            except (HyphalError, OSError) as e:
                log.error("blob download %s: cannot store it: %s", self.hash.hex(), e)
                self._run(self._machine.cancel(anyio.current_time(), f"cannot store it: {e}"))
        elif isinstance(action, DropProvider):
            peer = self._peer(action.provider)
            if peer is not None:
                self._record_drop(peer, action.reason)
                self._forget(peer, action.reason)
        elif isinstance(action, Finished):
            self._close_partial()
            self._end(None)
        elif isinstance(action, Failed):
            self._close_partial()
            self._end(action.reason)

    def _close_partial(self) -> None:
        if self._partial is not None:
            self._partial.close()  # flushes
            self._partial = None

    def _end(self, error: str | None) -> None:
        self._error = error
        self._done.set()
        for send in self._events:
            send.close()
        for peer in list(self._peers.values()):
            self._close(peer, "download over")


async def download_blob(
    store: BlobStore,
    hash_: bytes,
    connections: Sequence[Connection],
    *,
    config: DownloadConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    timeout: float | None = None,
) -> TempTag:
    """Download ``hash_`` from every connection's peer at once; returns a temp tag on it.

    Raises :class:`DownloadFailed`, or ``TimeoutError`` after ``timeout``, as
    themselves (not in an ExceptionGroup of the downloader's task group). A
    connection that is closing by the time its channel would open (the pool
    replaced it with a duplicate's survivor, say) is one provider fewer, as if
    its channel had ended at once: with none left the download fails as one
    with no provider does.
    """
    outcome: TempTag | DownloadFailed | TimeoutError
    async with BlobDownloader(store, hash_, config=config, on_progress=on_progress) as dl:
        for connection in connections:
            with contextlib.suppress(anyio.ClosedResourceError):
                await dl.add_provider(connection)
        # Raised here, an error would leave the task group wrapped in an ExceptionGroup.
        try:
            outcome = await dl.wait(timeout)
        except (DownloadFailed, TimeoutError) as exc:
            outcome = exc
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


__all__ = ["BlobDownloader", "DownloadFailed", "download_blob"]
