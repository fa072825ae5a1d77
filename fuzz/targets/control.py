"""Control request lines (control/protocol.py, methods/registry.py, params.py), as the daemon reads them.

Each line goes the way of ``ControlServer._request`` up to the handler:
decoded, its id checked, its method looked up, and then every param the
method takes read with each accessor a handler may use. Nothing runs on a
node. Refusal: ``DecodeError`` or ``InvalidInput`` (each sent back as a typed error).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from fuzz.harness import Target
from hyphal.control.methods import METHODS, lookup
from hyphal.control.params import Params
from hyphal.control.protocol import MAX_LINE, decode
from hyphal.errors import DecodeError, InvalidInput


def _read_every_param(params: Params, allowed: frozenset[str]) -> None:
    readers = (params.opt_text, params.flag, params.opt_int, params.opt_seconds, params.hex32, params.path)
    for key in sorted(allowed):
        for read in readers:
            with contextlib.suppress(InvalidInput):
                read(key)


def run(data: bytes) -> None:
    if len(data) > MAX_LINE:
        return  # the server refuses longer lines before decoding them
    message = decode(data)
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        raise DecodeError("a request id is a number or a string")
    method = message.get("method")
    _, params = lookup(method, message.get("params"))
    assert isinstance(method, str)
    _read_every_param(params, METHODS[method][0])


def seeds() -> Iterator[bytes]:
    requests = [
        {"id": 1, "method": "files.list", "params": {}},
        {"id": "a", "method": "files.add", "params": {"path": "/tmp/x", "name": "x", "private": True}},
        {"id": 3, "method": "group.join", "params": {"invite": "hyphal://group/abc?s=def"}},
        {"id": 4, "method": "feed.get", "params": {"feed": "00" * 32, "index": 3, "timeout": 2.5}},
        {"id": None, "method": "nope"},
    ]
    for request in requests:
        yield json.dumps(request).encode() + b"\n"
    yield b'{"id": 1, "method": "files.get", "params": {"name": "\\u00e9", "dest": "/tmp/d"}}\n'


TARGET = Target("control", run, (DecodeError, InvalidInput), seeds)
