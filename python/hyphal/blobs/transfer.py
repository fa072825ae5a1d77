"""The multi-provider download of one blob, sans-I/O (docs/PROTOCOL.md §12.6).

:class:`Download` holds no sockets, reads no clock and never sleeps: the
driver feeds it events (a provider joined or left, a reply arrived, time
passed), each with the current time, and performs the actions it returns.

How it works:

- Every provider is asked HAS; its HAVE gives its size claim and bitfield.
- The size is verified before anything is stored: the last group is fetched
  first (from the first provider to claim a size), and its proof only
  verifies under the true size. A provider claiming another size is dropped.
- The blob's groups are striped over the providers: each has a window of
  GETs in flight, and whenever one completes it pulls the next free run of
  groups it holds, so faster providers get more of the work. Providers may
  join at any time and start pulling at once. With several providers a GET
  takes at most its fair share of what is free (free groups over providers
  times window, at least ``MIN_SHARE_GROUPS``): one provider's first window
  must not swallow a small blob and leave the others nothing but end game.
- Each GET's reply is verified group by group as it streams in
  (:class:`hyphal._core.RangeDecoder`); verified groups go to the store at
  once. A reply that fails verification drops its provider, and the groups
  it had not delivered go back to the pool for the others.
- A request without progress for ``stall_timeout`` drops its provider (dead
  or too slow). When no free work is left, a provider with nothing in
  flight steals the back half of the largest remainder not yet stolen of
  another's request (end game): the owner reaches that part last, so each
  steal duplicates at most half a remainder, even when the owner's bytes are
  already on the wire. Whichever delivers a group first wins, and requests
  whose groups all arrived are cancelled (the owner's as well as the thief's).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass, field

from hyphal import _core
from hyphal.blobs.actions import (
    THREAD_BYTES,
    Action,
    Decoded,
    DecodeJob,
    DropProvider,
    Failed,
    Finished,
    Progress,
    Send,
    SizeKnown,
    Store,
)
from hyphal.blobs.bitfield import GroupBits
from hyphal.blobs.messages import (
    DATA,
    MAX_GET_GROUPS,
    Data,
    Error,
    ErrorCode,
    Have,
    HaveState,
    decode_reply,
    encode_cancel,
    encode_get,
    encode_has,
)
from hyphal.errors import DecodeError, InvalidInput, VerificationError

log = logging.getLogger("hyphal.blobs")

GROUP_SIZE: int = _core.BLOB_GROUP_SIZE

_FREE, _REQUESTED, _HAVE = 0, 1, 2

MIN_SHARE_GROUPS = 4
"""The smallest GET the fair share cuts requests down to (64 KiB): smaller ones would
cost a round of parent nodes and a message each for little balance gained."""


@dataclass(frozen=True)
class DownloadConfig:
    request_groups: int = 64
    """Groups per GET (64 = 1 MiB)."""
    window: int = 4
    """GETs in flight per provider."""
    stall_timeout: float = 10.0
    """Seconds a request may go without a byte before its provider is dropped."""
    no_provider_timeout: float = 10.0
    """Seconds the download waits with no provider at all before it fails."""
    max_size: int = 2**40
    """Largest blob accepted (1 TiB); a provider claiming more is dropped."""

    def __post_init__(self) -> None:
        if not 1 <= self.request_groups <= MAX_GET_GROUPS or self.window < 1:
            raise InvalidInput(f"request_groups must be in [1, {MAX_GET_GROUPS}] and window positive")
        if self.stall_timeout <= 0 or self.no_provider_timeout <= 0:
            raise InvalidInput("timeouts must be positive")


# -- state ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Request:
    id: int
    provider: Hashable
    start: int
    end: int
    decoder: _core.RangeDecoder
    next: int
    """First group of the range not delivered yet."""
    last_progress: float
    steal_end: int
    """Groups from here to ``end`` were stolen by end-game duplicates; ``end`` if none."""
    duplicate_of: _Request | None = None
    """The request whose tail this one duplicates (end game), while that one runs."""


@dataclass(eq=False)
class _Provider:
    id: Hashable
    joined: float
    has_id: int
    claim: int | None = None
    raw_bits: bytes | None = None
    bits: GroupBits | None = None
    """Groups it holds; ``None`` with ``ready`` means all of them."""
    ready: bool = False
    requests: dict[int, _Request] = field(default_factory=dict)
    received: int = 0


class Download:
    """The state machine of one blob download; see the module docstring."""

    def __init__(
        self,
        hash_: bytes,
        *,
        size: int | None = None,
        have: GroupBits | None = None,
        config: DownloadConfig | None = None,
        now: float = 0.0,
    ) -> None:
        if len(hash_) != 32:
            raise InvalidInput("a blob hash is 32 bytes")
        self.hash = bytes(hash_)
        self.config = config or DownloadConfig()
        self.size: int | None = None
        self._state = bytearray()
        self._have_count = 0
        self._providers: dict[Hashable, _Provider] = {}
        self._requests: dict[int, _Request] = {}
        self._next_id = 1
        self._probe: _Request | None = None
        self._probe_nodes: list[tuple[int, bytes]] = []
        self._probe_groups: list[tuple[int, bytes]] = []
        self._started = now
        self._no_provider_since: float | None = now
        self._received = 0
        self._bytes_done = 0
        self.finished = False
        self.failed: str | None = None
        if size is not None:
            self._set_size(size, have)

    # -- queries ------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.finished or self.failed is not None

    @property
    def provider_count(self) -> int:
        return len(self._providers)

    def provider_bytes(self) -> dict[Hashable, int]:
        """Verified bytes received from each current provider."""
        return {p.id: p.received for p in self._providers.values()}

    @property
    def deadline(self) -> float | None:
        """When :meth:`tick` must next run, if ever."""
        if self.done:
            return None
        times = [r.last_progress + self.config.stall_timeout for r in self._requests.values()]
        times += [p.joined + self.config.stall_timeout for p in self._providers.values() if p.claim is None]
        if self._no_provider_since is not None:
            times.append(self._no_provider_since + self.config.no_provider_timeout)
        return min(times) if times else None

    # -- events -------------------------------------------------------------------------

    def add_provider(self, provider: Hashable, now: float) -> list[Action]:
        if self.done or provider in self._providers:
            return []
        p = _Provider(provider, now, self._new_id())
        self._providers[provider] = p
        self._no_provider_since = None
        return [Send(provider, encode_has(p.has_id, self.hash))]

    def remove_provider(self, provider: Hashable, reason: str, now: float) -> list[Action]:
        """The provider is gone (its connection or channel closed)."""
        p = self._providers.pop(provider, None)
        if p is None:
            return []
        log.info("blob %s: provider %r removed: %s", self.hash.hex()[:16], provider, reason)
        for r in list(p.requests.values()):
            self._forget(r)
        if not self._providers:
            self._no_provider_since = now
        return self._fill(now)

    def on_message(self, provider: Hashable, message: bytes | memoryview, now: float) -> list[Action]:
        p = self._providers.get(provider)
        if p is None or self.done:
            return []
        try:
            reply = decode_reply(message)
            if isinstance(reply, Have):
                return self._on_have(p, reply, now)
            if isinstance(reply, Data):
                return self._on_data(p, reply, now)
            return self._on_error(p, reply, now)
        except (DecodeError, VerificationError) as e:
            return self._drop(p, f"{type(e).__name__}: {e}", now)

    def tick(self, now: float) -> list[Action]:
        if self.done:
            return []
        actions: list[Action] = []
        for r in list(self._requests.values()):
            p = self._providers.get(r.provider)
            if p is not None and now - r.last_progress >= self.config.stall_timeout:
                actions += self._drop(p, f"no data for {self.config.stall_timeout:g} s", now)
        for p in list(self._providers.values()):
            if p.claim is None and now - p.joined >= self.config.stall_timeout:
                actions += self._drop(p, f"no HAVE for {self.config.stall_timeout:g} s", now)
        if (
            self._no_provider_since is not None
            and now - self._no_provider_since >= self.config.no_provider_timeout
        ):
            actions += self._fail(f"no provider for {self.config.no_provider_timeout:g} s")
        return actions

    def cancel(self, now: float, reason: str = "cancelled") -> list[Action]:
        """Stop: outstanding requests are cancelled; what is stored stays for a later resume."""
        if self.done:
            return []
        return self._fail(reason)

    # -- replies ---------------------------------------------------------------------------

    def _on_have(self, p: _Provider, have: Have, now: float) -> list[Action]:
        if have.id != p.has_id or p.claim is not None:
            raise DecodeError("unexpected HAVE")
        if have.state is HaveState.ABSENT:
            return self._drop(p, "does not have the blob", now)
        if have.size > self.config.max_size:
            return self._drop(p, f"claims {have.size} bytes, over the {self.config.max_size} accepted", now)
        if self.size is not None and have.size != self.size:
            return self._drop(p, f"claims size {have.size}, the blob has {self.size}", now)
        p.claim = have.size
        p.raw_bits = have.bitfield if have.state is HaveState.PARTIAL else None
        if self.size is None:
            return self._start_probe(now)
        self._ready(p)
        return self._fill(now)

    def _ready(self, p: _Provider) -> None:
        n = len(self._state)
        p.bits = None if p.raw_bits is None else GroupBits(n, p.raw_bits)  # DecodeError drops it
        p.ready = True

    def _start_probe(self, now: float) -> list[Action]:
        """Fetch the last group from a provider with a size claim, to verify the size."""
        if self._probe is not None:
            return []
        for p in self._providers.values():
            if p.claim is None:
                continue
            last = _core.blob_group_count(p.claim) - 1
            if p.raw_bits is not None and not (p.raw_bits[last >> 3 :][:1] or b"\0")[0] >> (last & 7) & 1:
                continue
            r = self._request(p, last, last + 1, p.claim, now)
            self._probe = r
            self._probe_nodes, self._probe_groups = [], []
            return [Send(p.id, encode_get(r.id, self.hash, p.claim, last, last + 1))]
        return []

    def data_job(
        self, provider: Hashable, message: bytes | memoryview, min_bytes: int = THREAD_BYTES
    ) -> DecodeJob | None:
        """For a large DATA reply: its verification work, so that a driver can run it off
        its event loop (:meth:`DecodeJob.run` releases the GIL) and then hand the result
        to :meth:`on_decoded`. ``None``: pass the message to :meth:`on_message` instead."""
        p = self._providers.get(provider)
        if p is None or self.done or len(message) < min_bytes or message[:1] != bytes((DATA,)):
            return None
        try:
            reply = decode_reply(message)
        except DecodeError:
            return None
        assert isinstance(reply, Data)
        r = p.requests.get(reply.id)
        if r is None:
            return None
        return DecodeJob(provider, r.id, reply.last, r.decoder, reply.payload)

    def on_decoded(self, job: DecodeJob, result: Decoded | Exception, now: float) -> list[Action]:
        """The outcome of :meth:`DecodeJob.run` (its result, or what it raised)."""
        p = self._providers.get(job.provider)
        if p is None or self.done:
            return []
        r = p.requests.get(job.request_id)
        if r is None or r.decoder is not job.decoder:
            return []  # retired meanwhile
        try:
            if isinstance(result, Exception):
                raise result
            return self._after_feed(p, r, job.last, *result, now)
        except (DecodeError, VerificationError) as e:
            return self._drop(p, f"{type(e).__name__}: {e}", now)

    def _on_data(self, p: _Provider, data: Data, now: float) -> list[Action]:
        r = p.requests.get(data.id)
        if r is None:
            return []  # a reply to a request cancelled meanwhile
        nodes, groups = r.decoder.feed(data.payload)
        return self._after_feed(p, r, data.last, nodes, groups, now)

    def _after_feed(
        self,
        p: _Provider,
        r: _Request,
        last: bool,
        nodes: list[tuple[int, bytes]],
        groups: list[tuple[int, bytes]],
        now: float,
    ) -> list[Action]:
        if last and not r.decoder.done:
            raise DecodeError("reply ended before its range did")
        actions: list[Action] = []
        if r is self._probe:
            # Nothing is stored before the size is known: hold the verified items.
            self._probe_nodes += nodes
            self._probe_groups += groups
            r.last_progress = now
            if not r.decoder.done:
                return []
            nodes, groups = self._probe_nodes, self._probe_groups
            self._probe = None
            assert p.claim is not None
            self._set_size(p.claim, None)
            actions.append(SizeKnown(p.claim))
            for q in list(self._providers.values()):
                if q.claim is not None and q.claim != self.size:
                    actions += self._drop(q, f"claims size {q.claim}, the blob has {self.size}", now)
                elif q.claim is not None:
                    try:
                        self._ready(q)
                    except DecodeError as e:
                        actions += self._drop(q, str(e), now)
        if groups or nodes:
            r.last_progress = now
            actions += self._store(p, r, nodes, groups, now)
        if r.decoder.done:
            self._forget(r)
        if self._have_count == len(self._state) and self.size is not None:
            return actions + self._finish()
        return actions + self._fill(now)

    def _on_error(self, p: _Provider, error: Error, now: float) -> list[Action]:
        r = p.requests.get(error.id)
        if r is None:
            return []
        if error.code in (ErrorCode.NOT_AVAILABLE, ErrorCode.NOT_FOUND) and r is not self._probe:
            # It lacks these groups after all: stop asking it for them.
            if p.bits is None:
                p.bits = GroupBits(len(self._state), full=True)
            p.bits = _without(p.bits, r.next, r.end)
            self._forget(r)
            return self._fill(now)
        return self._drop(p, f"error {error.code}: {error.text}", now)

    # -- bookkeeping -------------------------------------------------------------------------

    def _new_id(self) -> int:
        i = self._next_id
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        return i

    def _set_size(self, size: int, have: GroupBits | None) -> None:
        n = _core.blob_group_count(size)
        self.size = size
        self._state = bytearray(n)
        if have is not None:
            if have.count != n:
                raise InvalidInput("bitfield does not match the size")
            for a, b in have.runs(True):
                self._state[a:b] = bytes([_HAVE]) * (b - a)
            self._have_count = have.present
            self._bytes_done = sum(_group_bytes(size, a, b) for a, b in have.runs(True))

    def _request(self, p: _Provider, start: int, end: int, size: int, now: float) -> _Request:
        decoder = _core.RangeDecoder(self.hash, size, start, end)
        r = _Request(self._new_id(), p.id, start, end, decoder, start, now, end)
        p.requests[r.id] = r
        self._requests[r.id] = r
        return r

    def _forget(self, r: _Request) -> None:
        """Retire a request; groups it was to fetch and nobody else has in flight become free."""
        if self._requests.pop(r.id, None) is None:
            return
        victim = r.duplicate_of
        if victim is not None and r.next < r.end:
            # A thief gone before its tail was in: that tail may be stolen again.
            victim.steal_end = max(victim.steal_end, r.end)
        for o in self._requests.values():
            if o.duplicate_of is r:
                o.duplicate_of = None  # no longer a duplicate: a request like any other
        p = self._providers.get(r.provider)
        if p is not None:
            p.requests.pop(r.id, None)
        if r is self._probe:
            self._probe = None
            return
        if not self._state:
            return
        others = [o for o in self._requests.values() if o.next < r.end and o.end > r.next]
        for i in range(r.next, r.end):
            if self._state[i] == _REQUESTED and not any(o.next <= i < o.end for o in others):
                self._state[i] = _FREE

    def _store(
        self,
        p: _Provider,
        r: _Request,
        nodes: list[tuple[int, bytes]],
        groups: list[tuple[int, bytes]],
        now: float,
    ) -> list[Action]:
        assert self.size is not None
        new = 0
        for first, data in groups:
            count = max(1, -(-len(data) // GROUP_SIZE))
            for i in range(first, first + count):
                if self._state[i] != _HAVE:
                    self._state[i] = _HAVE
                    self._have_count += 1
                    new += min(GROUP_SIZE, self.size - i * GROUP_SIZE)
            r.next = max(r.next, first + count)
        p.received += new
        self._bytes_done += new
        self._received += new
        actions: list[Action] = [Store(nodes, groups)]
        # Requests whose remaining groups all arrived by another route (end game) are done,
        # this one included: its provider would otherwise stream groups we hold to the end.
        if self._duplicating():
            for o in list(self._requests.values()):
                # Another request's decoder may be busy on a worker thread: only r's is read.
                if (
                    o is self._probe
                    or (o is r and r.decoder.done)
                    or _any_missing(self._state, o.next, o.end)
                ):
                    continue
                self._forget(o)
                actions.append(Send(o.provider, encode_cancel(o.id)))
        elapsed = max(now - self._started, 1e-9)
        rate = self._received / elapsed
        left = self.size - self._bytes_done
        actions.append(
            Progress(
                self._bytes_done, self.size, len(self._providers), rate, left / rate if rate > 0 else None
            )
        )
        return actions

    def _duplicating(self) -> bool:
        """Whether two requests may cover the same groups (the end game)."""
        return any(r.duplicate_of is not None or r.steal_end < r.end for r in self._requests.values())

    def _fill(self, now: float) -> list[Action]:
        """Give every ready provider work up to its window."""
        if self.size is None or self.done:
            return self._start_probe(now) if not self.done else []
        actions: list[Action] = []
        progress = True
        while progress:
            progress = False
            # Least loaded first, so a new provider starts pulling at once.
            for p in sorted(self._providers.values(), key=lambda q: len(q.requests)):
                if not p.ready or len(p.requests) >= self.config.window:
                    continue
                run = self._free_run(p) or self._endgame_run(p)
                if run is None:
                    continue
                start, end, original = run
                r = self._request(p, start, end, self.size, now)
                if original is not None:
                    r.duplicate_of, original.steal_end = original, start
                for i in range(start, end):
                    if self._state[i] == _FREE:
                        self._state[i] = _REQUESTED
                actions.append(Send(p.id, encode_get(r.id, self.hash, self.size, start, end)))
                progress = True
        return actions

    def _share(self, first_free: int) -> int:
        """The most groups a new GET may take: ``request_groups``, and with several providers
        no more than a fair share of what is free (of a window's worth each, but at least
        ``MIN_SHARE_GROUPS`` unless that is more than one provider's share). Requests shrink as
        the free groups do, so a pool is left for whoever finishes first to pull from, and
        the end game (which duplicates) only meets small remainders."""
        limit = self.config.request_groups
        ready = sum(1 for q in self._providers.values() if q.ready)
        if ready > 1:
            # Counted only as far as can matter: a large blob's every GET must not scan it all.
            span = ready * self.config.window * limit
            free = self._state.count(_FREE, first_free, first_free + span)
            share = max(-(-free // (ready * self.config.window)), min(MIN_SHARE_GROUPS, -(-free // ready)))
            limit = min(limit, share)
        return limit

    def _free_run(self, p: _Provider) -> tuple[int, int, _Request | None] | None:
        state = self._state
        i = state.find(_FREE)
        if i < 0:
            return None
        limit = self._share(i)
        while i >= 0:
            if p.bits is None or i in p.bits:
                end = i + 1
                while (
                    end < len(state)
                    and end - i < limit
                    and state[end] == _FREE
                    and (p.bits is None or end in p.bits)
                ):
                    end += 1
                return i, end, None
            i = state.find(_FREE, i + 1)
        return None

    def _endgame_run(self, p: _Provider) -> tuple[int, int, _Request | None] | None:
        """Nothing free: steal the back half of the largest remainder not yet stolen of
        another provider's request. Only a provider with nothing in flight steals (one busy
        with its own work would finish that first anyway), and never from a duplicate.
        The owner streams its range in order and reaches the stolen part last, so when it
        is merely a little behind, it is cancelled having sent at most that half twice."""
        if p.requests:
            return None
        best: tuple[int, int, _Request] | None = None
        most = 0
        for r in self._requests.values():
            if r.provider == p.id or r.duplicate_of is not None or r is self._probe:
                continue
            missing = _missing(self._state, r.next, r.steal_end)
            if missing <= most:
                continue
            start, end = _back_half(self._state, r.next, r.steal_end, missing)
            if p.bits is not None and any(i not in p.bits for i in range(start, end)):
                continue
            best, most = (start, end, r), missing
        return best

    def _drop(self, p: _Provider, reason: str, now: float) -> list[Action]:
        log.warning("blob %s: dropping provider %r: %s", self.hash.hex()[:16], p.id, reason)
        actions: list[Action] = [DropProvider(p.id, reason)]
        return actions + self.remove_provider(p.id, reason, now)

    def _finish(self) -> list[Action]:
        self.finished = True
        actions: list[Action] = [Send(r.provider, encode_cancel(r.id)) for r in self._requests.values()]
        self._requests.clear()
        for p in self._providers.values():
            p.requests.clear()
        return [*actions, Finished()]

    def _fail(self, reason: str) -> list[Action]:
        self.failed = reason
        actions: list[Action] = [Send(r.provider, encode_cancel(r.id)) for r in self._requests.values()]
        self._requests.clear()
        return [*actions, Failed(reason)]


def _group_bytes(size: int, start: int, end: int) -> int:
    return min(end * GROUP_SIZE, size) - min(start * GROUP_SIZE, size)


def _any_missing(state: bytearray, start: int, end: int) -> bool:
    return state.count(_HAVE, start, end) != end - start


def _missing(state: bytearray, start: int, end: int) -> int:
    return end - start - state.count(_HAVE, start, end) if start < end else 0


def _back_half(state: bytearray, start: int, end: int, missing: int) -> tuple[int, int]:
    """The range holding the last ``ceil(missing / 2)`` of the ``missing`` groups not held
    in ``[start, end)``, trimmed of held groups at both ends."""
    while state[end - 1] == _HAVE:
        end -= 1
    want, at = (missing + 1) // 2, end
    while want:
        at -= 1
        want -= state[at] != _HAVE
    return at, end


def _without(bits: GroupBits, start: int, end: int) -> GroupBits:
    raw = bytearray(bits.to_bytes())
    for i in range(start, end):
        raw[i >> 3] &= ~(1 << (i & 7)) & 0xFF
    return GroupBits(bits.count, bytes(raw))


__all__ = [
    "Action",
    "DecodeJob",
    "Download",
    "DownloadConfig",
    "DropProvider",
    "Failed",
    "Finished",
    "Progress",
    "Send",
    "SizeKnown",
    "Store",
]
