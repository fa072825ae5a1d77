"""The simulator's stream network: a Transport in virtual time, with partitions and crashes."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from hyphal.net.connection import Connection, ConnectionConfig, establish
from hyphal.net.transport import Transport, TransportAttribute, remote_address
from hyphal.signing import KeyPair
from hyphal.sim.clock import run
from hyphal.sim.streams import StreamNetwork


async def pair(net: StreamNetwork) -> tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]:
    """A stream dialled from 10.0.0.1 to 10.0.0.2:7300, and its accepted end."""
    a: Transport = net.transport("10.0.0.1")
    b: Transport = net.transport("10.0.0.2")
    listener = await b.listen("10.0.0.2", 7300)
    dialled = await a.dial("10.0.0.2", 7300)
    accepted = await listener.acceptors[0].accept()
    return dialled, accepted


def test_bytes_flow_in_order_with_latency_and_bandwidth() -> None:
    async def main() -> None:
        net = StreamNetwork(1, bandwidth=10e6)
        start = anyio.current_time()
        dialled, accepted = await pair(net)
        assert anyio.current_time() - start > 2 * net.base_latency  # one round trip
        assert remote_address(dialled) == ("10.0.0.2", 7300)
        assert accepted.extra(TransportAttribute.remote_address) == dialled.extra(
            TransportAttribute.local_address
        )
        payload = bytes(range(256)) * 4096  # 1 MiB
        sent = anyio.current_time()
        received = bytearray()

        async def reader() -> None:
            while len(received) < 10 * len(payload):
                received.extend(await accepted.receive())

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            for _ in range(10):
                await dialled.send(payload)
        assert received == payload * 10
        # 10 MiB at 10 MB/s: about a second of virtual time, not less.
        assert anyio.current_time() - sent >= 10 * len(payload) / 10e6
        await dialled.aclose()
        with pytest.raises(anyio.EndOfStream):
            await accepted.receive()

    run(main)


def test_refused_and_unroutable_dials() -> None:
    async def main() -> None:
        net = StreamNetwork(1)
        net.add_host("10.0.0.2")
        a = net.transport("10.0.0.1")
        with pytest.raises(ConnectionRefusedError):
            await a.dial("10.0.0.2", 9)
        with pytest.raises(OSError, match="no route"):
            await a.dial("10.9.9.9", 9)
        listener = await net.transport("10.0.0.2").listen("0.0.0.0", 0)
        assert listener.addresses[0][0] == "10.0.0.2"
        with pytest.raises(OSError, match="in use"):
            await net.transport("10.0.0.2").listen("10.0.0.2", listener.addresses[0][1])
        await listener.aclose()
        with pytest.raises(ConnectionRefusedError):
            await a.dial(*listener.addresses[0])

    run(main)


def test_a_partition_holds_bytes_and_dials_until_it_heals() -> None:
    async def main() -> None:
        net = StreamNetwork(1)
        dialled, accepted = await pair(net)
        net.partition([["10.0.0.1"]])
        await dialled.send(b"across")
        with anyio.move_on_after(30) as scope:
            await accepted.receive()
        assert scope.cancelled_caught  # nothing gets through
        dialling_done = anyio.Event()

        async def dial_across() -> None:
            await net.transport("10.0.0.1").dial("10.0.0.2", 7300)
            dialling_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(dial_across)
            await anyio.sleep(10)
            assert not dialling_done.is_set()
            net.heal()
            with anyio.fail_after(5):
                assert await accepted.receive() == b"across"
                await dialling_done.wait()

    run(main)


def test_a_crash_breaks_every_stream_and_removes_listeners() -> None:
    async def main() -> None:
        net = StreamNetwork(1)
        dialled, accepted = await pair(net)
        net.crash("10.0.0.2")
        with pytest.raises(anyio.BrokenResourceError):
            await accepted.send(b"x")
        with anyio.fail_after(1), pytest.raises(anyio.BrokenResourceError):
            await dialled.receive()
        net.restart("10.0.0.2")
        with pytest.raises(ConnectionRefusedError):
            await net.transport("10.0.0.1").dial("10.0.0.2", 7300)

    run(main)


async def _connection_scenario(seed: int) -> tuple[str, float, str]:
    """An encrypted connection over the sim, a channel's worth of data, then a partition that
    outlasts the idle timeout."""
    net = StreamNetwork(seed)
    config = ConnectionConfig(keepalive_interval=5, idle_timeout=15)
    dialled, accepted = await pair(net)
    keys = [KeyPair(bytes([i]) * 32) for i in (1, 2)]
    async with anyio.create_task_group() as tg:
        server_result: list[Connection] = []

        async def serve() -> None:
            server_result.append(await establish(accepted, keys[1], initiator=False, config=config))

        tg.start_soon(serve)
        client = await establish(dialled, keys[0], initiator=True, config=config)
    server = server_result[0]
    async with client, server:
        assert client.remote_public_key == keys[1].public_key
        async with anyio.create_task_group() as tg:

            async def echo() -> None:
                request = await server.next_channel_request()
                assert request is not None
                channel = await request.accept()
                await channel.send(await channel.receive())

            tg.start_soon(echo)
            channel = await client.open_channel("test/echo", b"1")
            await channel.send(b"hello" * 1000)
            assert await channel.receive() == b"hello" * 1000
        net.partition([["10.0.0.1"]])
        started = anyio.current_time()
        with anyio.fail_after(60):
            await client.closed.wait()
        waited = anyio.current_time() - started
    return net.trace_digest, waited, str(client.close_reason)


def test_connections_run_over_the_sim_and_time_out_across_a_partition() -> None:
    digest, waited, reason = run(_connection_scenario, 1, seed=1)
    assert 15 <= waited <= 20, reason
    assert run(_connection_scenario, 1, seed=1) == (digest, waited, reason)
    assert run(_connection_scenario, 2, seed=2)[0] != digest


def test_keep_trace_lists_what_the_digest_covers() -> None:
    async def exchange(net: StreamNetwork) -> str:
        dialled, accepted = await pair(net)
        await dialled.send(b"hello")
        assert await accepted.receive() == b"hello"
        return net.trace_digest

    kept = StreamNetwork(1, keep_trace=True)
    assert run(exchange, kept) == run(exchange, StreamNetwork(1))  # the same digest either way

    async def main() -> None:
        assert kept.trace is not None
        assert [(kind, route, size) for kind, _, route, size, _ in kept.trace] == [
            ("C", "10.0.0.1:40000>10.0.0.2:7300", 0),
            ("D", "10.0.0.1:40000>10.0.0.2:7300", 5),
        ]

    run(main)
