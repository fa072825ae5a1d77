"""The ephemeral message channel on real nodes over TCP on 127.0.0.x: direct and relayed delivery,
dedupe, store-and-forward, a replay after a restart refused, and bad input refused."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from hyphal import aead
from hyphal.clock import wall_time
from hyphal.errors import InvalidInput, RateLimited
from hyphal.groups.channel_format import MAX_BODY, MAX_ENVELOPE, PROTOCOL, message_key, seal_message
from hyphal.groups.events import MessageReceived
from hyphal.groups.group import Group
from hyphal.node import Node
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
WAIT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a counter a peer's message moves), with a deadline."""
    with anyio.fail_after(WAIT):
        while not condition():
            await anyio.sleep(0.01)
    assert condition(), what


@asynccontextmanager
async def inbox(group: Group) -> AsyncIterator[list[MessageReceived]]:
    """Every message ``group`` receives while the block runs."""
    got: list[MessageReceived] = []

    async def collect() -> None:
        async for message in group.messages():
            got.append(message)

    async with anyio.create_task_group() as tg:
        tg.start_soon(collect)
        await anyio.wait_all_tasks_blocked()
        yield got
        tg.cancel_scope.cancel()


def peer_count(group: Group) -> int:
    return len(group.channel.subscribers)


async def test_direct_and_relayed_copies_are_delivered_once_and_a_replay_after_restart_is_refused(
    tmp_path: Path,
) -> None:
    async with (
        Node(tmp_path / "c", listen="127.0.0.83:0", name="relay", backup_for=[]) as c,
        Node(tmp_path / "a", listen="127.0.0.81:0", name="alice") as a,
    ):
        c.group_manager.backup_for = frozenset([a.public_key])
        ga = await a.create_group("chat")
        async with Node(tmp_path / "b", listen="127.0.0.82:0", name="bob") as b:
            gb = await b.join_group(ga.invite().to_uri())
            await a.add_backup(ga.id, "{}:{}".format(*c.address))
            gc = c.group(ga.id)
            assert gc.channel.is_relay
            await eventually(lambda: peer_count(ga) == peer_count(gb) == peer_count(gc) == 2, "all attached")
            async with inbox(gb) as got:
                sent = ga.send("hello bob", topic="chat")
                assert sent.peers == 2  # bob directly, and the relay
                await eventually(lambda: len(got) == 1 and gb.channel.stats.duplicates == 1, "both copies")
                ga.send("second")
                await eventually(lambda: len(got) == 2, "the second message")
            assert [(m.body, m.topic, m.sender_name, m.sender) for m in got] == [
                (b"hello bob", "chat", "alice", a.public_key),
                (b"second", "", "alice", a.public_key),
            ]
            assert gc.channel.stats.forwarded >= 2
            assert gc.channel.stats.delivered == 0  # the relay read nothing
            assert gb.channel.stats.refused == {}
        # B restarts from its data dir. A and the relay hold both messages (store-and-forward)
        # and hand them over again as B comes back: B's persisted window refuses them.
        async with Node(tmp_path / "b", listen="127.0.0.82:0", name="bob") as b:
            gb = b.group(ga.id)
            async with inbox(gb) as got:
                await gb.connect_members()
                await eventually(lambda: gb.channel.stats.duplicates >= 4, "the replays")
                ga.send("after the restart")
                await eventually(lambda: len(got) == 1, "the new message")
            assert [m.body for m in got] == [b"after the restart"]
            assert gb.channel.stats.delivered == 1


async def test_a_message_waits_for_a_peer_that_connects_within_its_ttl(tmp_path: Path) -> None:
    async with Node(tmp_path / "a", listen="127.0.0.84:0", name="alice") as a:
        ga = await a.create_group("later")
        uri = ga.invite().to_uri()
        sent = ga.send(b"\x00\xffbinary", ttl=60)
        assert sent.peers == 0
        async with Node(tmp_path / "b", listen="127.0.0.85:0", name="bob") as b:
            gb = await b.join_group(uri)
            async with inbox(gb) as got:
                await eventually(lambda: len(got) == 1, "the held message")
            assert got[0].body == b"\x00\xffbinary"
            assert got[0].direct


async def test_bad_input_is_refused_and_the_channel_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        Node(tmp_path / "a", listen="127.0.0.86:0", name="alice") as a,
        Node(tmp_path / "b", listen="127.0.0.87:0", name="bob") as b,
        Node(tmp_path / "d", listen="127.0.0.88:0", name="stranger") as d,
    ):
        ga = await a.create_group("guarded")
        gb = await b.join_group(ga.invite().to_uri())
        await eventually(lambda: peer_count(ga) == 1 and peer_count(gb) == 1, "attached")
        (to_b,) = ga.channel.subscribers
        key = message_key(ga.keys)
        mallory = KeyPair.generate()

        def sealed(sender: KeyPair, body: bytes = b"x", channel: bytes = ga.keys.discovery_key) -> bytes:
            return seal_message(
                sender,
                key,
                channel,
                id=secrets.token_bytes(16),
                nonce=secrets.token_bytes(aead.NONCE_SIZE),
                sent_ms=_now_ms(),
                ttl_ms=60_000,
                topic="",
                body=body,
            )

        good = sealed(a.keypair)
        forged = good[:29] + mallory.public_key + good[61:]
        wrong_key = seal_message(
            mallory,
            bytes(32),
            ga.keys.discovery_key,
            id=bytes(16),
            nonce=bytes(24),
            sent_ms=_now_ms(),
            ttl_ms=60_000,
            topic="",
            body=b"x",
        )
        for junk in (
            b"",
            b"\x01garbage",
            good[:-64],
            b"\x01" + bytes(MAX_ENVELOPE),
            forged,
            wrong_key,
            sealed(a.keypair, channel=bytes(32)),
        ):
            to_b.outbox.put(junk)
        async with inbox(gb) as got:
            to_b.outbox.put(good)
            await eventually(lambda: len(got) == 1, "the good message after the junk")
        assert gb.channel.stats.refused == {"DecodeError": 4, "SignatureError": 2, "DecryptionError": 1}
        assert len(gb.channel.refusals) == 7
        assert "refused a group message" in caplog.text
        # Sending too much, too fast, or too large is refused here, before it goes out.
        with pytest.raises(InvalidInput):
            ga.send(bytes(MAX_BODY + 1))
        for _ in range(30):  # the burst
            ga.send("flood")
        with pytest.raises(RateLimited):
            ga.send("one too many")
        # A stranger cannot open the channel: it proved no membership on the group channel.
        with anyio.fail_after(WAIT):
            connection = await d.dial("{}:{}".format(*a.address))
            channel = await connection.open_channel(PROTOCOL, ga.keys.discovery_key)
            with pytest.raises(anyio.BrokenResourceError):
                await channel.wait_open()
        assert peer_count(ga) == 1


def _now_ms() -> int:
    return int(wall_time() * 1000)
