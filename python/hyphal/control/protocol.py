"""The control protocol's framing and errors.

One JSON object per line, UTF-8, at most :data:`MAX_LINE` bytes. A request is
``{"id": n, "method": "...", "params": {...}}``; the daemon answers with
``{"id": n, "result": ...}`` or ``{"id": n, "error": {"type": ..., "message": ...}}``,
and before that, for long requests, any number of ``{"id": n, "progress": {...}}``
(sync, get) or ``{"id": n, "event": {...}}`` (watch) lines. A line that is not
a request gets an error with ``"id": null``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from hyphal import errors
from hyphal.errors import HyphalError

SOCKET_NAME = "control.sock"
MAX_LINE = 1 << 20
MAX_SOCKET_PATH = 100
"""sun_path holds 108 bytes on Linux (104 on macOS): stay under both."""
INTERNAL = "InternalError"

Message = dict[str, Any]


class ControlError(HyphalError):
    """The daemon failed a request with an error that has no class of its own here."""


class NodeStopped(ControlError):
    """The node closed the control connection before answering (it is stopping, or it died)."""


class NoDaemon(HyphalError):
    """No node is running in the data dir (no control socket answers there)."""


def socket_path(data_dir: Path) -> Path:
    path = data_dir.absolute() / SOCKET_NAME
    if len(str(path).encode()) > MAX_SOCKET_PATH:
        raise errors.InvalidInput(f"the data dir path is too long for a control socket: {data_dir}")
    return path


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> Message:
    """One line as a JSON object; :class:`~hyphal.errors.DecodeError` otherwise."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise errors.DecodeError("a control message is one JSON object per line") from None
    except RecursionError:  # json recurses once per level of nesting; a line may hold a million
        raise errors.DecodeError("a control message nests arrays or objects too deeply") from None
    if not isinstance(message, dict):
        raise errors.DecodeError("a control message is a JSON object")
    return message


def error_body(exc: BaseException) -> dict[str, str]:
    """How an error travels: its class name and a message fit for one line on a terminal."""
    if isinstance(exc, HyphalError):
        return {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, TimeoutError):  # an OSError with no text of its own
        return {"type": "NotAvailable", "message": f"timed out{f': {exc}' if str(exc) else ''}"}
    if isinstance(exc, OSError):
        message = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return {"type": "OSError", "message": f"{message}{where}"}
    return {"type": INTERNAL, "message": f"internal error in the node: {type(exc).__name__}"}


def raise_error(body: object) -> NoReturn:
    """Raise what an error response carries, as the hyphal error class it names."""
    if not isinstance(body, dict):
        raise ControlError("the node sent a malformed error")
    kind, message = str(body.get("type", "")), str(body.get("message", ""))
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, HyphalError):
        raise cls(message)
    raise ControlError(message)


__all__ = [
    "MAX_LINE",
    "SOCKET_NAME",
    "ControlError",
    "Message",
    "NoDaemon",
    "NodeStopped",
    "decode",
    "encode",
    "error_body",
    "raise_error",
    "socket_path",
]
