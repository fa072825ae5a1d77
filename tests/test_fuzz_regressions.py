"""Every crash the fuzz targets (fuzz/) found, as a test of the decoder that had it.

Each input was decoded into something other than the decoder's typed error:
now it is refused with that error, and a node that got it keeps serving.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from hyphal import _core
from hyphal.config import NodeConfig
from hyphal.control.protocol import decode, socket_path
from hyphal.control.server import ControlServer, bind
from hyphal.errors import DecodeError, InvalidInput
from hyphal.groups.invite import Invite
from hyphal.node import Node

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.harness import check  # noqa: E402
from fuzz.targets import load  # noqa: E402

# -- uris: an invite holding undecodable bytes -------------------------------------------------

# As the fuzzer found it: raw bytes that are not UTF-8 in the name and in a peer's IPv6 zone.
INVITE_WITH_RAW_BYTES = (
    b"hyphal://group/aaaqeayeaudaocajoqibdyfib4ibceqtcqkrmfyydenbwha5dypq?s=a4dqobyha4dqobyha4dqobyha4dqobyha4"
    b"dqobyha4dqobyha4dq&n=family%20\x02seed-1.example.org:657300&peer=[fe80::1%251\x91\x970]:7301"
)


def test_an_invite_with_undecodable_bytes_is_refused_not_accepted_unwritable() -> None:
    # A command line delivers such bytes as lone surrogates; the invite used to be accepted,
    # and then to_uri (and the groups file) failed with UnicodeEncodeError.
    text = INVITE_WITH_RAW_BYTES.decode("utf-8", "surrogateescape")
    with pytest.raises(DecodeError, match="valid Unicode"):
        Invite.from_uri(text)
    with pytest.raises(InvalidInput, match="valid Unicode"):
        Invite(bytes(32), bytes(32), "photos \udcd3")
    check(load("uris"), b"\x00" + INVITE_WITH_RAW_BYTES)


# -- config: a path, a number and nesting a config file could break ---------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Path.expanduser raised RuntimeError for the home of an unknown user.
        ('data_dir = "~no_such_user_hyphal/data"', "data_dir: .* names the home of a user"),
        # float() of an integer past 1e308 raised OverflowError.
        ("[connection]\nidle_timeout = 1" + "0" * 400, "connection.idle_timeout must be a number"),
        # tomllib recursed past the interpreter's limit (RecursionError).
        ("bootstrap = " + "[" * 5000, "nests arrays or tables too deeply"),
        ("a = " + "{b = " * 5000, "nests arrays or tables too deeply"),
    ],
)
def test_a_config_that_crashed_the_loader_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as info:
        NodeConfig.load(path)
    assert str(path) in str(info.value)
    check(load("config"), text.encode())


# -- control: a request line nested too deeply --------------------------------------------------


def test_a_control_line_nested_too_deeply_is_a_decode_error() -> None:
    # json.loads raised RecursionError, which the server answered as an InternalError.
    for line in (b"[" * 100_000, b'{"id": 1, "method": "status", "params": ' + b"[" * 50_000):
        with pytest.raises(DecodeError, match="too deeply"):
            decode(line)
        check(load("control"), line)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Path]:
    """A node with its control server, as in test_control.py; yields the data dir."""
    data = tmp_path / "n"
    data.mkdir()
    listener = await bind(data)
    async with listener, Node(data) as node, anyio.create_task_group() as tg:
        tg.start_soon(ControlServer(node, listener).serve)
        yield data
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_daemon_answers_a_deep_line_with_a_typed_error_and_keeps_serving(
    daemon: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = await anyio.connect_unix(socket_path(daemon))
    buffer = b""

    async def reply() -> dict[str, object]:
        nonlocal buffer
        with anyio.fail_after(10):
            while b"\n" not in buffer:
                buffer += await stream.receive()
        line, buffer = buffer.split(b"\n", 1)
        answer: dict[str, object] = json.loads(line)
        return answer

    with caplog.at_level(logging.WARNING, logger="hyphal.control"):
        await stream.send(b"[" * 100_000 + b"\n")
        error = {"type": "DecodeError", "message": "a control message nests arrays or objects too deeply"}
        assert await reply() == {"id": None, "error": error}
    assert "bad request" in caplog.text
    await stream.send(b'{"id": 2, "method": "group.list"}\n')
    assert await reply() == {"id": 2, "result": []}


# -- blob_refs: the sealed size of every plaintext opened_size gives --------------------------


def _sealed(plain: int) -> int:
    """PROTOCOL §12.4: 16 bytes of tag per segment of GROUP_SIZE - 16 plaintext bytes (at least one)."""
    segment = _core.blob.GROUP_SIZE - 16
    return plain + 16 * max(1, -(-plain // segment))


def test_every_plaintext_size_opened_size_gives_seals_back() -> None:
    # sealed_size refused plaintexts over 2^61 that opened_size gives for sealed sizes up to
    # 2^62; this sealed size is the one the fuzzer found in a private blob reference.
    found = 3527374039393863328
    plain = _core.blob.opened_size(found)
    assert _core.blob.sealed_size(plain) == found
    # The largest plaintext that seals within 2^62 bytes, and the first that does not.
    largest = 2**62 - 16 * (2**62 // _core.blob.GROUP_SIZE)
    while _sealed(largest + 1) <= 2**62:
        largest += 1
    assert _core.blob.opened_size(_core.blob.sealed_size(largest)) == largest
    with pytest.raises(InvalidInput):
        _core.blob.sealed_size(largest + 1)
