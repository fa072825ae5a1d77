"""A group's connections: the group channel on each, and dialling the members not connected.

:class:`Dialer` runs the group channel on every connection to a member
(once per connection; the peer proves membership on it) and keeps a
connection to every member whose advert lists addresses: it dials those not
connected, all at once, backs off from the unreachable ones (doubling from
:data:`DIAL_BACKOFF`'s low end to its high end), wakes when an advert or a
closed connection changes what is wanted, and asks the DHT (through
:class:`~hyphal.groups.presence.Presence`) who is in the group when members
stay out of reach. Until a member is reached, an invite's peer addresses are
the way in.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import anyio

from hyphal.errors import HyphalError
from hyphal.groups.invite import b32
from hyphal.groups.members import Member
from hyphal.groups.presence import Presence
from hyphal.groups.replication import GroupReplication
from hyphal.groups.state import GroupRecord
from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import Connection

log = logging.getLogger("hyphal.groups")

DIAL_TIMEOUT = 10.0
DIAL_BACKOFF = (1.0, 60.0)
DISCOVER_INTERVAL = 60.0


class DialHost(Protocol):
    """What the dialer needs from the node."""

    async def dial(self, address: str, expected_remote: bytes | None = None) -> Connection: ...


class Dialer(TaskOwner):
    """The group channel on every member connection, and the dials that keep them."""

    def __init__(
        self,
        host: DialHost,
        device_key: bytes,
        record: GroupRecord,
        replication: GroupReplication,
        presence: Presence,
    ) -> None:
        self._host = host
        self._device_key = device_key
        self._record = record
        self._replication = replication
        self._presence = presence
        self._attached: dict[Connection, anyio.Event] = {}
        self._wake = anyio.Event()
        self._backoff: dict[bytes, tuple[float, float]] = {}
        """Per member key: (when to try next, the delay that was)."""
        self.failures: dict[str, str] = {}
        """Per address: why the last dial to it failed (cleared when one succeeds)."""
        self.answered: dict[str, bytes] = {}
        """Per address: the device key of the node that answered there last."""

    @property
    def _id(self) -> str:
        return b32(self._replication.keys.group_key)

    def start(self) -> None:
        """Keep members connected from now on (until the dialer is left)."""
        self._spawn(self._run)

    def wake(self) -> None:
        """Something changed (an advert, a closed connection): look at who to dial now."""
        self._wake.set()

    def dial_soon(self, address: str, expected: bytes | None) -> None:
        """Try ``address`` in the background (a peer the DHT names, say)."""
        self._spawn(self._dial_address, address, expected)

    # -- connections -------------------------------------------------------------------------

    async def attach(self, connection: Connection) -> None:
        """Run the group channel on ``connection`` (once; the peer proves membership on it)."""
        if self._record.left or connection.closed.is_set():
            return
        done = self._attached.get(connection)
        if done is not None:
            await done.wait()
            if self._replication.attached_to(connection):
                return
            if connection.remote_public_key in self._replication.refused:
                return  # it declined the group on this connection: no asking again
            # The channel ended with the connection still up: the peer closed the group (and
            # opens it again now), so the channel is opened afresh.
            if self._attached.get(connection) is done:
                del self._attached[connection]
            return await self.attach(connection)
        done = self._attached[connection] = anyio.Event()
        try:
            await self._replication.attach(connection)
            self._spawn(self._forget_when_closed, connection)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._attached.pop(connection, None)
        finally:
            done.set()

    async def _forget_when_closed(self, connection: Connection) -> None:
        await connection.closed.wait()
        self._attached.pop(connection, None)
        self.wake()

    async def connect_members(self, timeout: float = DIAL_TIMEOUT) -> int:
        """Dial every member (and invite peer) not connected now, at once; returns how many
        member peers have sent their whole view when this returns (or ``timeout`` passes)."""
        replication = self._replication
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as tg:
                for member in self._unconnected():
                    tg.start_soon(self._dial_member, member)
                if not replication.member_connections():
                    # The invite's hints, until a member is reached (then adverts say where).
                    for peer in self._record.peers:
                        tg.start_soon(self._dial_address, peer, None)
            await self._wait_views_synced()
        return sum(1 for c in replication.member_connections() if replication.is_synced(c))

    async def _wait_views_synced(self) -> None:
        """Until every attached peer has sent its whole view, or turned out not to be a member."""
        while any(self._replication.is_pending(c) for c in self._attached):
            await self._replication.synced.wait()

    def _unconnected(self) -> list[Member]:
        connected = {c.remote_public_key for c in self._replication.member_connections()}
        return [
            m
            for m in self._replication.membership.current()
            if m.key != self._device_key and m.key not in connected and m.advert.addresses
        ]

    # -- dialling ----------------------------------------------------------------------------

    async def _dial_member(self, member: Member) -> bool:
        for address in member.advert.addresses:
            if await self._dial_address(address, member.key):
                self._backoff.pop(member.key, None)
                return True
        _, delay = self._backoff.get(member.key, (0.0, DIAL_BACKOFF[0] / 2))
        delay = min(delay * 2, DIAL_BACKOFF[1])
        self._backoff[member.key] = (anyio.current_time() + delay, delay)
        return False

    async def _dial_address(self, address: str, expected: bytes | None) -> bool:
        try:
            with anyio.fail_after(DIAL_TIMEOUT):
                connection = await self._host.dial(address, expected)
                await self.attach(connection)
            self.failures.pop(address, None)
            self.answered[address] = connection.remote_public_key
            return True
        except (
            OSError,
            TimeoutError,
            HyphalError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ) as exc:
            self.failures[address] = dial_failure(exc)
            log.debug("group %s: dialling %s failed: %s", self._id, address, exc)
            return False

    def why_unreached(self, address: str) -> str:
        """Why ``address`` is not a member connection now, in a few words."""
        answered = self.answered.get(address)
        if answered is not None and answered in self._replication.refused:
            return f"declined the group ({self._replication.refused[answered]})"
        return self.failures.get(address, "not tried yet")

    async def _run(self) -> None:
        """Keep a connection to every member with an address, backing off from unreachable ones."""
        while True:
            # A fresh event before the pass: a wake-up (a new advert) during it is not lost.
            self._wake = anyio.Event()
            now = anyio.current_time()
            due = [m for m in self._unconnected() if self._backoff.get(m.key, (0.0, 0.0))[0] <= now]
            async with anyio.create_task_group() as tg:
                for member in due:
                    tg.start_soon(self._dial_member, member)
            since_discovery = anyio.current_time() - self._presence.last_discovery
            if self._unconnected() and since_discovery > DISCOVER_INTERVAL:
                await self._presence.discover()
            waits = [until for until, _ in self._backoff.values() if until > anyio.current_time()]
            sleep = min(waits, default=math.inf) - anyio.current_time()
            with anyio.move_on_after(max(0.05, min(sleep, DISCOVER_INTERVAL))):
                await self._wake.wait()


def dial_failure(exc: BaseException) -> str:
    """Why a dial failed, in a few words for a person."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    if type(exc) is OSError and isinstance(cause, OSError):
        exc = cause  # anyio's "all connection attempts failed": the attempt's own error says why
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "refused the connection (no node listening there)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, HyphalError):
        return str(exc)
    return "the connection closed"


__all__ = ["DIAL_BACKOFF", "DIAL_TIMEOUT", "DISCOVER_INTERVAL", "DialHost", "Dialer", "dial_failure"]
