"""A peer's address with the transport that reaches it: ``host:port`` (TCP) or ``ws://host:port``.

Adverts, invites, ``advertise`` and every address a user dials may name a
WebSocket listener as ``ws://host:port`` (``ws://[v6]:port``; no path, no
``wss``); everything else is TCP, as before. :func:`parse_endpoint` reads
both, :func:`format_endpoint` writes them back, and :func:`tcp_addresses`
keeps the TCP ones (what the DHT announces: its records carry ``host:port``
only).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from hyphal.errors import InvalidAddress
from hyphal.net.address import Address, format_address, parse_address

WS_PREFIX = "ws://"
TCP = "tcp"
WEBSOCKET = "ws"


class Endpoint(NamedTuple):
    transport: str
    """``"tcp"`` or ``"ws"``."""
    address: Address


def parse_endpoint(text: str, *, allow_port_zero: bool = False) -> Endpoint:
    """``host:port`` as TCP, ``ws://host:port`` as WebSocket; :class:`InvalidAddress` otherwise."""
    if not isinstance(text, str):
        raise InvalidAddress(f"an address is text (host:port), not {type(text).__name__}")
    if text[:5].lower() == WS_PREFIX:
        rest = text[len(WS_PREFIX) :]
        if "/" in rest:
            raise InvalidAddress(f"a WebSocket address is ws://host:port, with no path: {text!r}")
        return Endpoint(WEBSOCKET, parse_address(rest, allow_port_zero=allow_port_zero))
    if "://" in text:
        raise InvalidAddress(f"an address is host:port or ws://host:port: {text!r}")
    return Endpoint(TCP, parse_address(text, allow_port_zero=allow_port_zero))


def format_endpoint(endpoint: Endpoint) -> str:
    text = format_address(endpoint.address)
    return WS_PREFIX + text if endpoint.transport == WEBSOCKET else text


def tcp_addresses(texts: Iterable[str]) -> list[Address]:
    """The TCP addresses among ``texts`` (each one a valid endpoint)."""
    return [e.address for e in map(parse_endpoint, texts) if e.transport == TCP]


__all__ = ["TCP", "WEBSOCKET", "WS_PREFIX", "Endpoint", "format_endpoint", "parse_endpoint", "tcp_addresses"]
