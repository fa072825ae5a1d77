"""A small blocking client of the control API (the CLI's side of the socket)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from hyphal.control.protocol import (
    Message,
    NoDaemon,
    NodeStopped,
    decode,
    encode,
    raise_error,
    socket_path,
)

Listener = Callable[[Any], None]


class ControlClient:
    def __init__(self, data_dir: Path) -> None:
        path = socket_path(data_dir)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._socket.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            self._socket.close()
            raise NoDaemon(f"no node is running in {data_dir}; start one with `hyphal node run`") from None
        self._lines = self._socket.makefile("rb")
        self._next_id = 1

    def close(self) -> None:
        self._lines.close()
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_progress: Listener | None = None,
        on_event: Listener | None = None,
    ) -> Any:
        """Send one request and wait for its result; streamed lines go to the listeners first.

        Raises the hyphal error class the daemon's error names.
        """
        request_id, self._next_id = self._next_id, self._next_id + 1
        sent = {k: v for k, v in (params or {}).items() if v is not None}
        self._socket.sendall(encode({"id": request_id, "method": method, "params": sent}))
        while True:
            message = self._receive()
            if message.get("id") not in (request_id, None):
                continue
            if "error" in message:
                raise_error(message["error"])
            if "progress" in message:
                if on_progress is not None:
                    on_progress(message["progress"])
            elif "event" in message:
                if on_event is not None:
                    on_event(message["event"])
            elif "result" in message:
                return message["result"]

    def _receive(self) -> Message:
        line = self._lines.readline()
        if not line:
            raise NodeStopped("the node closed the control connection (is it stopping?)")
        return decode(line)


__all__ = ["ControlClient"]
