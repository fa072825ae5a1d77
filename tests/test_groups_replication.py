"""Group membership over real TCP on 127.0.0.1: adverts spread through a relay, strangers get nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from hyphal.groups.keys import GroupKeys, new_group_secret
from hyphal.groups.members import Change, sign_advert
from hyphal.groups.messages import GroupMessage, MemberAdvert, encode_auth
from hyphal.groups.replication import GroupReplication
from hyphal.groups.session import PROTOCOL
from hyphal.net.connection import Connection, connect, listen
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
WAIT = 10.0
KEYS = GroupKeys(bytes(range(32)), new_group_secret())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serving(replication: GroupReplication, keypair: KeyPair) -> AsyncIterator[int]:
    async def handler(conn: Connection) -> None:
        await replication.attach(conn)
        await conn.closed.wait()

    async with await listen("127.0.0.1", 0, keypair, handler) as listener:
        yield listener.port


async def until(replication: GroupReplication, condition: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT):
        while not condition():
            await replication.changes.wait()


def names(replication: GroupReplication) -> set[str]:
    return {m.advert.name for m in replication.membership.current()}


def advert(device: KeyPair, seq: int, name: str, left: bool = False) -> SignedValue:
    return sign_advert(KEYS, device, seq, MemberAdvert(name, bytes(32), ("127.0.0.1:1",), left))


async def test_adverts_spread_through_a_relay_and_updates_follow() -> None:
    a_key, b_key, c_key = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    async with (
        GroupReplication(KEYS) as a,
        GroupReplication(KEYS) as b,
        GroupReplication(KEYS) as c,
        serving(a, a_key) as port,
    ):
        a.publish(advert(a_key, 1, "a"))
        b_conn = await connect("127.0.0.1", port, b_key)
        c_conn = await connect("127.0.0.1", port, c_key)
        async with b_conn, c_conn:
            await b.attach(b_conn)
            await c.attach(c_conn)
            b.publish(advert(b_key, 1, "b"))
            await until(c, lambda: names(c) == {"a", "b"})  # b's advert reached c through a
            seen: list[Change | None] = []
            c.changes.subscribe(lambda accepted: seen.append(accepted.change))
            b.publish(advert(b_key, 2, "b", left=True))
            await until(c, lambda: names(c) == {"a"})
            assert seen == [Change.LEFT]
            assert a.dropped == b.dropped == c.dropped == []
            assert a.member_peer_count == 2


async def test_a_stranger_is_dropped_and_learns_no_member() -> None:
    """A stranger who knows the discovery key (any DHT node does) opens the channel and guesses."""
    a_key = KeyPair.generate()
    async with GroupReplication(KEYS) as a, serving(a, a_key) as port:
        a.publish(advert(a_key, 1, "a"))
        async with await connect("127.0.0.1", port, KeyPair.generate()) as conn:
            channel = await conn.open_channel(PROTOCOL, KEYS.discovery_key)
            await channel.send(encode_auth(bytes(32)))
            with anyio.fail_after(WAIT):
                received = [bytes(m) async for m in channel]  # until the member closes it
                while not a.dropped:
                    await a.drops.wait()
    assert "not a member" in a.dropped[0][1]
    # The member's own proof is all a stranger ever sees: no advert, not even a device key.
    assert [m[0] for m in received] == [GroupMessage.AUTH]
    assert all(a_key.public_key not in m for m in received)
