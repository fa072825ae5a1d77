"""Replicates a signed value (the seed's "pubkey-value") to every connected subscriber.

Each attached connection gets one channel ("hyphal/value/1", id = the
value's id, PROTOCOL.md §10.6). Both sides send their current version when
the channel opens and every newer version as it is accepted, so a new
version spreads through any mesh of subscribers, relayed by each. A
receiver keeps a version only if it is signed by the value's key, has a
strictly higher seq and passes the optional validate hook; a peer that sends
a malformed or forged version is dropped. A peer that sends an older
version is answered with ours, so it catches up.

:class:`ValueService` is a node's set of them: every value it writes or
follows, attached to every connection it has, and found by key alone through
the DHT (see its docstring).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from hyphal.errors import DecodeError, HyphalError, InvalidInput, NotAvailable, SeqConflict, SignatureError
from hyphal.feed.value_feed import SignedValueFeed
from hyphal.lifecycle import TaskOwner
from hyphal.net.address import format_address, parse_address
from hyphal.replication.fanout import Fanout, Subscriber
from hyphal.signed_value import SignedValue, value_id

if TYPE_CHECKING:
    from hyphal.dht.udp import UdpDht
    from hyphal.net.connection import ChannelRequest, Connection
    from hyphal.signing import KeyPair
    from hyphal.storage.base import Storage

PROTOCOL = "hyphal/value/1"
VALUE_MESSAGE = 1
MAX_MESSAGE = 4096
"""A signed value encodes to under 1.2 KiB; anything larger is not one."""

DHT_TIMEOUT = 30.0
"""How long a value's DHT get, put or announce may take before the node goes on without it."""
FIND_INTERVAL = 30.0
"""While a followed value has no subscriber connected, its writers are looked for this often."""
MAX_ANNOUNCED_ADDRESSES = 4

log = logging.getLogger("hyphal.replication")


def encode_value_message(value: SignedValue) -> bytes:
    return bytes((VALUE_MESSAGE,)) + value.encode()


def decode_value_message(data: bytes) -> SignedValue:
    """Parse and verify one message; DecodeError or SignatureError on bad input."""
    if len(data) > MAX_MESSAGE:
        raise DecodeError(f"value message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    if not data or data[0] != VALUE_MESSAGE:
        raise DecodeError("not a VALUE message")
    return SignedValue.decode_verified(data[1:])


class SignedValueReplication(Fanout):
    """Keeps one :class:`SignedValueFeed` in sync with every attached connection."""

    def __init__(self, value: SignedValueFeed) -> None:
        super().__init__(PROTOCOL, value.id)
        self.value = value
        self._unsubscribe = value.on_change(self._on_change)

    async def _stopping(self) -> None:
        self._unsubscribe()
        await super()._stopping()

    def _opened(self, sub: Subscriber) -> None:
        if self.value.current is not None:
            sub.outbox.put(encode_value_message(self.value.current))

    def _on_change(self, version: SignedValue) -> None:
        self.broadcast(encode_value_message(version))

    def _on_message(self, sub: Subscriber, data: bytes) -> None:
        try:
            version = decode_value_message(data)
            self.value.apply(version)
        except (DecodeError, SignatureError, InvalidInput) as e:
            self._drop(sub, f"bad value: {e}")
            return
        except HyphalError as e:
            # The validate hook said no: the sender may just be relaying; keep it.
            log.info("value from %s rejected: %s", sub.connection, e)
            return
        current = self.value.current
        if current is not None and current.seq > version.seq:
            sub.outbox.put(encode_value_message(current))


class ValueHost(Protocol):
    """What a :class:`ValueService` needs from the node."""

    @property
    def keypair(self) -> KeyPair: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def dht(self) -> UdpDht: ...

    def advertised_addresses(self) -> list[str]: ...

    async def dial(self, address: str, expected_remote: bytes | None = None) -> Connection: ...


class ValueService(TaskOwner):
    """Every signed value a node writes or follows, on every connection it has.

    How a value is found by its key (public key and salt) alone:

    - :meth:`set` signs the new version in this node's replica, sends it to every
      connected subscriber, stores it in the DHT as the mutable record of the
      same key and salt (§11.7: republished by the DHT node), and announces this
      node on the value's id as a DHT topic. So ``record get KEY --salt NAME``
      reads a value too, and the next seq follows the DHT's if the record was
      put there some other way.
    - :meth:`latest` reads this node's replica and the DHT record, and keeps the
      higher seq.
    - :meth:`follow` keeps a replica, and while no subscriber is connected it
      looks the value's id up as a topic, dials the announced writers, and reads
      the DHT record; once a channel is open, new versions arrive on it as they
      are signed (§10.6).

    The channel is the live path, the DHT record the fallback (a writer that
    is offline, or that no follower can dial).
    """

    def __init__(self, host: ValueHost) -> None:
        self._host = host
        self._replications: dict[bytes, SignedValueReplication] = {}
        # A dict for its order (id()-hashed connections in a set would make the simulator's runs differ).
        self._connections: dict[Connection, None] = {}
        self._announced: set[bytes] = set()
        self._attaching: dict[tuple[bytes, Connection], anyio.Event] = {}

    def get(self, id: bytes) -> SignedValueReplication | None:  # noqa: A002
        return self._replications.get(id)

    async def add(self, value: SignedValueFeed) -> SignedValueReplication:
        """Replicate ``value`` from now on, on every connection (those open now included)."""
        found = self._replications.get(value.id)
        if found is not None:
            return found
        replication = SignedValueReplication(value)
        await self._require_running().start(self._run, replication)
        self._replications[value.id] = replication
        for connection in list(self._connections):
            await self._attach(replication, connection)
        return replication

    async def connected(self, connection: Connection) -> None:
        """A new connection: attach every value to it, and forget it when it closes."""
        if connection not in self._connections:
            self._connections[connection] = None
            self._spawn(self._forget_when_closed, connection)
        for replication in list(self._replications.values()):
            await self._attach(replication, connection)

    async def handle(self, request: ChannelRequest) -> bool:
        """A peer opened a value channel: run it if this node writes or follows that value."""
        replication = self._replications.get(request.id)
        if replication is None:
            return False
        await self._attach(replication, request.connection)
        return True

    async def _attach(self, replication: SignedValueReplication, connection: Connection) -> None:
        # One attach per (value, connection) at a time; again only once the last channel ended
        # (a peer that declined it before it followed the value, say).
        key = (replication.value.id, connection)
        while (busy := self._attaching.get(key)) is not None:
            await busy.wait()
        if connection.closed.is_set() or any(s.connection is connection for s in replication.subscribers):
            return
        done = self._attaching[key] = anyio.Event()
        try:
            await replication.attach(connection)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, InvalidInput):
            pass  # closing, or the pair is open already: nothing more to attach
        finally:
            del self._attaching[key]
            done.set()

    async def _run(
        self, replication: SignedValueReplication, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        async with replication:
            task_status.started()
            await anyio.sleep_forever()

    async def _forget_when_closed(self, connection: Connection) -> None:
        await connection.closed.wait()
        self._connections.pop(connection, None)

    # -- by key, through the DHT -------------------------------------------------------------

    def _replica(self, public_key: bytes, salt: bytes) -> SignedValueFeed:
        keypair = self._host.keypair
        own = keypair if public_key == keypair.public_key else None
        return SignedValueFeed(self._host.storage, public_key, salt=salt, keypair=own)

    async def set(self, salt: bytes, value: bytes, *, cas: int | None = None) -> tuple[SignedValue, int]:
        """Sign ``value`` as this node's value ``salt``; returns it and how many DHT nodes stored it.

        ``cas``: fail with :class:`SeqConflict` unless the current seq is ``cas`` (0: no value yet).
        """
        host = self._host
        replication = await self.add(self._replica(host.keypair.public_key, salt))
        replica = replication.value
        remote = await self._dht_latest(host.keypair.public_key, salt)
        if remote is not None:
            self._apply(replica, remote)
        current = replica.seq or 0
        if cas is not None and cas != current:
            raise SeqConflict(
                f"compare-and-swap failed: the value's seq is {current}, not {cas}; "
                f"read it again and retry with --cas {current}"
            )
        signed = replica.put(value)
        stored = 0
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                stored = (await host.dht.put_signed(signed)).stored
                if signed.id not in self._announced:
                    addresses = [parse_address(a) for a in host.advertised_addresses()]
                    await host.dht.announce(host.keypair, signed.id, addresses[:MAX_ANNOUNCED_ADDRESSES])
                    self._announced.add(signed.id)
        except (TimeoutError, HyphalError) as e:
            log.info("value %s: the DHT put did not complete: %s", signed.id.hex()[:16], e)
        return signed, stored

    async def latest(self, public_key: bytes, salt: bytes) -> SignedValue:
        """The newest version this node or the DHT holds; :class:`NotAvailable` if neither has one."""
        found = self._replications.get(value_id(public_key, salt))
        replica = found.value if found is not None else self._replica(public_key, salt)
        remote = await self._dht_latest(public_key, salt)
        if remote is not None and found is not None:
            self._apply(replica, remote)
        best = replica.current
        if remote is not None and (best is None or remote.seq > best.seq):
            best = remote
        if best is None:
            raise NotAvailable(
                f"no value {salt.decode('utf-8', 'replace')!r} of {public_key.hex()} here or in the DHT"
            )
        return best

    async def follow(self, public_key: bytes, salt: bytes) -> SignedValueReplication:
        """Keep a replica of the value, and find its writers (see :meth:`keep_finding`)."""
        return await self.add(self._replica(public_key, salt))

    async def keep_finding(self, replication: SignedValueReplication) -> None:
        """While no subscriber is connected: dial the writers announced on the value's id, and
        take the DHT's version; every :data:`FIND_INTERVAL` until cancelled."""
        replica = replication.value
        while True:
            if not replication.subscribers:
                remote = await self._dht_latest(replica.public_key, replica.salt)
                if remote is not None:
                    self._apply(replica, remote)
                await self._dial_writers(replica.id)
            await anyio.sleep(FIND_INTERVAL)

    async def _dial_writers(self, id: bytes) -> None:  # noqa: A002
        host = self._host
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                found = await host.dht.lookup(id)
        except (TimeoutError, HyphalError) as e:
            log.info("value %s: the DHT lookup did not complete: %s", id.hex()[:16], e)
            return
        for announce in found.announces:
            if announce.public_key == host.keypair.public_key:
                continue
            for address in announce.addresses:
                try:
                    with anyio.fail_after(DHT_TIMEOUT):
                        await host.dial(format_address(address), announce.public_key)
                    break
                except (TimeoutError, HyphalError, OSError) as e:
                    log.info("value %s: could not dial %s: %s", id.hex()[:16], format_address(address), e)

    async def _dht_latest(self, public_key: bytes, salt: bytes) -> SignedValue | None:
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                return (await self._host.dht.get_mutable(public_key, salt)).signed_value
        except (TimeoutError, HyphalError) as e:
            log.info("value of %s: the DHT get did not complete: %s", public_key.hex()[:16], e)
            return None

    @staticmethod
    def _apply(replica: SignedValueFeed, version: SignedValue) -> None:
        try:
            replica.apply(version)
        except HyphalError as e:  # the DHT's copy failed the replica's checks: keep ours
            log.info("value %s: the DHT's version was refused: %s", replica.id.hex()[:16], e)


__all__ = [
    "PROTOCOL",
    "SignedValueReplication",
    "ValueHost",
    "ValueService",
    "decode_value_message",
    "encode_value_message",
]
