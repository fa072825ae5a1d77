"""The handshake (:mod:`hyphal.net.handshake`, sans-I/O) driven over a transport's byte stream."""

from __future__ import annotations

import anyio
import anyio.abc

from hyphal.errors import HandshakeError
from hyphal.net.frames import HANDSHAKE_HEADER_LEN, HandshakeMessageDecoder, encode_handshake_message
from hyphal.net.handshake import Handshake, HandshakeResult
from hyphal.net.noise import MAX_MESSAGE_LEN
from hyphal.net.transport import STREAM_ERRORS


async def run_handshake(
    stream: anyio.abc.ByteStream, handshake: Handshake, timeout: float
) -> tuple[HandshakeResult, bytes]:
    """Run ``handshake`` over ``stream`` within ``timeout`` seconds: its result, and the
    bytes read past the last handshake message (the first frames, already sent)."""
    decoder = HandshakeMessageDecoder()
    try:
        with anyio.fail_after(timeout):
            if handshake.initiator:
                await stream.send(encode_handshake_message(handshake.start()))
            while not handshake.complete:
                message = decoder.next_message()
                if message is None:
                    decoder.feed(await stream.receive(MAX_MESSAGE_LEN + HANDSHAKE_HEADER_LEN))
                    continue
                reply = handshake.receive(message)
                if reply is not None:
                    await stream.send(encode_handshake_message(reply))
    except TimeoutError as exc:
        raise HandshakeError(f"handshake timed out after {timeout:g} s") from exc
    except anyio.EndOfStream as exc:
        raise HandshakeError("the peer closed the connection during the handshake") from exc
    except STREAM_ERRORS as exc:
        raise HandshakeError(f"connection lost during the handshake: {exc!r}") from exc
    return handshake.result, decoder.take_rest()


__all__ = ["run_handshake"]
