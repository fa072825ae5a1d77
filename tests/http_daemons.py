"""Daemons with the HTTP API for the test_http_* tests: each on its own 127.0.0.x, and an httpx
client that carries its token, and a Server-Sent Events reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from hyphal.control.process import DaemonProcess
from hyphal.http.access import load_or_create_token

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def start(
    root: Path, name: str, ip: str, *extra: str, http_toml: str = "", run: tuple[str, ...] = ("node", "run")
) -> DaemonProcess:
    """``hyphal node run`` (or ``run``) with its node and its HTTP API on ``ip`` (port 0 both)."""
    config = root / f"{name}.toml"
    config.write_text(f'[http]\nlisten = "{ip}:0"\n{http_toml}')
    command = ["--config", str(config), *run, "--listen", f"{ip}:0", "--name", name, *extra]
    node = DaemonProcess(root / name, command).start()
    assert node.info["http"], node.log_tail()
    return node


def client(node: DaemonProcess, **options: Any) -> httpx.Client:
    token = load_or_create_token(node.data_dir)
    headers = {"Authorization": f"Bearer {token}", **options.pop("headers", {})}
    return httpx.Client(base_url=node.info["http"], headers=headers, timeout=TIMEOUT, **options)


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """``(event name, parsed data)`` for each Server-Sent Event of a streamed response (pings skipped)."""
    name, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def next_event(stream: Iterator[tuple[str, Any]], kind: str, **match: Any) -> Any:
    """The data of the next event called ``kind`` whose data has ``match``'s keys and values."""
    for got, data in stream:
        if got == kind and all(data.get(k) == v for k, v in match.items()):
            return data
    raise AssertionError(f"the stream ended before a {kind!r} event matching {match}")


__all__ = ["client", "events", "next_event", "start"]
