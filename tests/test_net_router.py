"""The router (over TCP and memory): channels reach their protocol's handler; the rest are refused,
with a reason."""

from __future__ import annotations

import logging

import anyio
import pytest

from hyphal.errors import InvalidInput
from hyphal.net.channel import Channel
from hyphal.net.connection import ChannelRequest, connect, listen
from hyphal.net.memory import MemoryNetwork
from hyphal.net.router import ChannelRouter
from hyphal.net.transport import TcpTransport, Transport
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
WAIT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["tcp", "memory"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return TcpTransport() if request.param == "tcp" else MemoryNetwork().transport("127.0.0.1")


async def refused_reason(channel: Channel) -> str:
    with pytest.raises(anyio.BrokenResourceError):
        await channel.wait_open()
    return channel.close_reason or ""


async def test_requests_are_routed_declined_and_survive_a_failing_handler(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    router = ChannelRouter()
    echoed: list[bytes] = []

    async def echo(request: ChannelRequest) -> bool:
        if request.id == b"absent":
            return False  # e.g. a feed this node does not hold
        channel = await request.accept()
        message = await channel.receive()
        echoed.append(message)
        await channel.send(message)
        return True

    async def broken(request: ChannelRequest) -> bool:
        raise RuntimeError("a bug in one service")

    router.route("echo", echo)
    router.route("broken", broken)
    with pytest.raises(InvalidInput):
        router.route("echo", echo)
    async with (
        router,
        await listen("127.0.0.1", 0, KeyPair.generate(), router.serve, transport=transport) as server,
    ):
        with anyio.fail_after(WAIT):
            async with await connect(
                "127.0.0.1", server.port, KeyPair.generate(), transport=transport
            ) as conn:
                channel = await conn.open_channel("echo", b"1")
                await channel.send(b"hello")
                assert await channel.receive() == b"hello"
                assert (
                    await refused_reason(await conn.open_channel("echo", b"absent")) == "not available here"
                )
                assert await refused_reason(await conn.open_channel("nope", b"")) == "unknown protocol"
                with caplog.at_level(logging.ERROR, logger="hyphal.net"):
                    assert await refused_reason(await conn.open_channel("broken", b"")) == "internal error"
                assert "a bug in one service" in caplog.text
                # The connection and the router still serve.
                again = await conn.open_channel("echo", b"2")
                await again.send(b"still here")
                assert await again.receive() == b"still here"
    assert echoed == [b"hello", b"still here"]
    assert router.rejected == {"not available here": 1, "unknown protocol": 1, "internal error": 1}


async def test_serving_before_entering_is_invalid_input() -> None:
    router = ChannelRouter()
    with pytest.raises(InvalidInput):
        await router.serve(None)  # type: ignore[arg-type]
