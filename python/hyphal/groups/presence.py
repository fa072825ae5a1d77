"""A group's presence: this device's advert, and the group in the DHT (docs/PROTOCOL.md §14.6).

:class:`Presence` signs and spreads this device's member advert (a new seq
each time: addresses may have changed), announces the device under the
group's discovery key and stores its advert (and, on the device that made
the group, the group info) as mutable records; and, when members are out of
reach, looks the group up there to learn who else is in it and where. Every
DHT step is best effort: a DHT that does not answer costs at most
:data:`DHT_TIMEOUT` and finds nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

import anyio

from hyphal.clock import wall_time
from hyphal.dht.udp import UdpDht
from hyphal.errors import HyphalError
from hyphal.groups.invite import b32
from hyphal.groups.members import sign_advert
from hyphal.groups.messages import GROUP_INFO_LABEL, MemberAdvert, decode_group_info, encode_group_info
from hyphal.groups.replication import GroupReplication
from hyphal.groups.state import GroupRecord
from hyphal.net.address import format_address
from hyphal.net.endpoint import tcp_addresses
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.groups")

DHT_TIMEOUT = 20.0
MAX_ADVERT_ADDRESSES = 8


class PresenceHost(Protocol):
    """What presence needs from the node: its identity, addresses and DHT."""

    @property
    def keypair(self) -> KeyPair: ...

    @property
    def dht(self) -> UdpDht: ...

    def advertised_addresses(self) -> list[str]: ...


class Presence:
    """This device's advert and DHT presence in one group."""

    def __init__(
        self,
        host: PresenceHost,
        record: GroupRecord,
        replication: GroupReplication,
        dial_soon: Callable[[str, bytes], None],
    ) -> None:
        """``dial_soon(address, device_key)``: try a peer the DHT says is in the group."""
        self._host = host
        self._record = record
        self._replication = replication
        self._keys = replication.keys
        self._dial_soon = dial_soon
        self.last_discovery = -math.inf
        """When :meth:`discover` last ran (``time.monotonic``)."""

    @property
    def _id(self) -> str:
        return b32(self._keys.group_key)

    @property
    def _device_key(self) -> bytes:
        return self._host.keypair.public_key

    # -- this device's advert ----------------------------------------------------------------

    def publish_advert(self, repo_writer: bytes, *, left: bool = False) -> SignedValue:
        """Sign this device's advert (a new seq: addresses may have changed) and spread it."""
        advert = MemberAdvert(
            self._record.member_name,
            repo_writer,
            tuple(self._host.advertised_addresses()[:MAX_ADVERT_ADDRESSES]),
            left=left,
            backup=not self._keys.is_member,
        )
        self._record.seq += 1
        signed = sign_advert(self._keys, self._host.keypair, self._record.seq, advert)
        self._replication.publish(signed)  # the group saves its file when the advert is accepted
        return signed

    async def store_advert(self, signed: SignedValue) -> None:
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                await self._host.dht.put_signed(signed)
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: storing our advert in the DHT did not complete: %s", self._id, exc)

    async def withdraw(self, tombstone: SignedValue) -> None:
        """Leaving: stop the announce's republishing and store the tombstone advert."""
        self._host.dht.node.unannounce(self._keys.discovery_key, self._device_key)
        await self.store_advert(tombstone)

    # -- the DHT -----------------------------------------------------------------------------

    async def announce(self) -> None:
        """Announce this device under the discovery key, store its advert and (the creator)
        the group info in the DHT (§14.6). The DHT node republishes them; this runs at
        start. Best effort: a DHT that does not answer costs at most ``DHT_TIMEOUT``."""
        dht = self._host.dht
        addresses = tcp_addresses(self._host.advertised_addresses())  # DHT records carry host:port only
        own = self._replication.membership.get(self._device_key)
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                await dht.announce(self._host.keypair, self._keys.discovery_key, addresses)
                if own is not None:
                    await dht.put_signed(own.signed)
                if self._record.group_seed is not None:
                    group_keypair = KeyPair(self._record.group_seed)
                    info = self._keys.seal_value(encode_group_info(self._record.name), GROUP_INFO_LABEL)
                    await dht.put_signed(
                        SignedValue.sign(group_keypair, int(wall_time()), info, salt=self._keys.discovery_key)
                    )
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: DHT announce did not complete: %s", self._id, exc)

    async def discover(self) -> int:
        """Look the group up in the DHT: merge the adverts of the members announced there.

        Returns how many adverts were new. Best effort: a DHT that does not
        answer costs at most ``DHT_TIMEOUT`` and finds nothing.
        """
        self.last_discovery = anyio.current_time()
        dht, fresh = self._host.dht, 0
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                found = await dht.lookup(self._keys.discovery_key)
                for announce in found.announces:
                    if announce.public_key == self._device_key:
                        continue
                    result = await dht.get_mutable(announce.public_key, self._keys.discovery_key)
                    if result.signed_value is not None and self.take(result.signed_value):
                        fresh += 1
                    elif not self._replication.membership.is_current(announce.public_key):
                        # No advert stored (or not yet): the announce's addresses are still a
                        # way in; the peer proves membership on the group channel.
                        for host, port in announce.addresses:
                            self._dial_soon(format_address((host, port)), announce.public_key)
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: DHT lookup did not complete: %s", self._id, exc)
        return fresh

    async def read_group_info(self, timeout: float = DHT_TIMEOUT) -> str | None:
        """The group's name from the group info record its creator stores in the DHT, or
        ``None`` if it cannot be found (§14.6). Found, it also proves the group secret: the
        record is signed by the group key, stored under a salt derived from the secret, and
        sealed under a key derived from it."""
        try:
            with anyio.fail_after(timeout):
                found = await self._host.dht.get_mutable(self._keys.group_key, self._keys.discovery_key)
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: reading the group info from the DHT did not complete: %s", self._id, exc)
            return None
        signed = found.signed_value
        if signed is None or signed.public_key != self._keys.group_key:
            return None
        try:
            return decode_group_info(self._keys.open_value(signed.value, GROUP_INFO_LABEL))
        except HyphalError as exc:
            log.warning("group %s: the group info in the DHT does not open: %s", self._id, exc)
            return None

    def take(self, signed: SignedValue) -> bool:
        """Merge and spread an advert found elsewhere (the DHT); whether it was new here."""
        held = self._replication.membership.get(signed.public_key)
        if held is not None and signed.seq <= held.seq:
            return False
        try:
            self._replication.publish(signed)
        except HyphalError as exc:
            log.info("group %s: an advert from the DHT was refused: %s", self._id, exc)
            return False
        return True


__all__ = ["DHT_TIMEOUT", "Presence", "PresenceHost"]
