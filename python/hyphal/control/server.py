"""The control server: JSON-line requests on a Unix socket, answered by the running node.

Each connection reads requests line by line and runs each in its own task,
so a ``watch`` does not block a ``ls`` on the same connection. A bad request
(not JSON, an unknown method, wrong params) gets a typed error and a log
line; nothing a client sends stops the daemon. A line longer than
:data:`~hyphal.control.protocol.MAX_LINE` gets an error and the connection
is closed, since the rest of it cannot be framed. When the client goes,
its requests are cancelled (that is how a ``watch`` ends).

Requests are never logged with their params: a ``group.join`` carries an
invite's secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from hyphal.control.methods import Call, lookup
from hyphal.control.protocol import MAX_LINE, Message, decode, encode, error_body, socket_path
from hyphal.errors import DecodeError, HyphalError, InvalidInput
from hyphal.node import Node

log = logging.getLogger("hyphal.control")

GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, anyio.IncompleteRead)
"""What reading from or writing to a client that went away raises."""


async def bind(data_dir: Path) -> anyio.abc.SocketListener:
    """Listen on ``control.sock`` in ``data_dir`` (mode 0600), unless a daemon already does."""
    path = socket_path(data_dir)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with probe, contextlib.suppress(FileNotFoundError, ConnectionRefusedError):
        probe.connect(str(path))
        raise InvalidInput(f"a node is already running in {data_dir}")
    # The umask closes the window between bind and chmod in which others could connect.
    old_umask = os.umask(0o177)
    try:
        return await anyio.create_unix_listener(path, mode=0o600)
    finally:
        os.umask(old_umask)


class _Client:
    """One connection: responses from concurrent requests are written whole, one at a time."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self._lock = anyio.Lock()

    async def send(self, message: Message) -> None:
        line = encode(message)
        async with self._lock:
            await self.stream.send(line)


class ControlServer:
    def __init__(self, node: Node, listener: anyio.abc.SocketListener) -> None:
        self._node = node
        self._listener = listener

    async def serve(self) -> None:
        await self._listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        client = _Client(stream)
        try:
            async with stream, anyio.create_task_group() as tg:
                reader = BufferedByteReceiveStream(stream)
                while True:
                    try:
                        line = await reader.receive_until(b"\n", MAX_LINE)
                    except anyio.DelimiterNotFound:
                        log.warning("control: a request line over %d bytes; closing the connection", MAX_LINE)
                        too_long = InvalidInput(f"a request line is at most {MAX_LINE} bytes")
                        await client.send({"id": None, "error": error_body(too_long)})
                        break
                    except GONE:
                        break
                    if line.strip():
                        tg.start_soon(self._request, client, line)
                tg.cancel_scope.cancel()
        except GONE:
            pass
        except Exception:  # a bug here must cost one connection, not the daemon
            log.exception("control: a connection failed")

    async def _request(self, client: _Client, line: bytes) -> None:
        request_id: Any = None
        method: object = None
        running = False
        try:
            message = decode(line)
            request_id, method = message.get("id"), message.get("method")
            if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
                request_id = None
                raise DecodeError("a request id is a number or a string")
            handler, params = lookup(method, message.get("params"))

            async def emit(kind: str, body: Any) -> None:
                await client.send({"id": request_id, kind: body})

            running = True
            result = await handler(Call(self._node, params, emit))
            await client.send({"id": request_id, "result": result})
        except GONE:
            return
        except Exception as raised:
            exc = _unwrap(raised)
            if isinstance(exc, GONE):
                return
            _log_failure(method if running else None, exc)
            with contextlib.suppress(*GONE):
                await client.send({"id": request_id, "error": error_body(exc)})


def _unwrap(exc: BaseException) -> BaseException:
    """The (first) error inside the exception groups task groups wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _log_failure(method: object, exc: BaseException) -> None:
    """``method`` is None for a request refused before it ran (malformed, unknown, bad params)."""
    if not isinstance(method, str):
        log.warning("control: bad request: %s", exc)
    elif isinstance(exc, HyphalError | OSError):
        log.info("control: %s failed: %s", method, exc)
    else:
        log.error("control: %s crashed", method, exc_info=exc)


__all__ = ["ControlServer", "bind"]
