"""Network addresses as text: the one :class:`Address` type, its parser and its formatter.

Every ``host:port`` a user, a config file, an invite or a peer hands us is
read by :func:`parse_address` and written back by :func:`format_address`:

- ``host:port`` with an IPv4 literal (``192.0.2.7:7300``) or a host name
  (``seed.example.org:7300``, kept as text: nothing here resolves names);
- ``[v6]:port`` with an IPv6 literal in brackets (``[2001:db8::1]:7300``,
  a zone allowed: ``[fe80::1%eth0]:7300``);
- a host alone, if the caller gives a ``default_port``.

A bare IPv6 literal (``::1:7300``) is refused: where its port starts is a
guess. Ports are 1-65535; 0 ("let the system pick") only where the caller
allows it, for a listen address. :class:`Address` is a ``NamedTuple``, so it
is the ``(host, port)`` tuple the sockets and the DHT (``Addr``) already use.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from hyphal.errors import InvalidAddress

MAX_PORT = 65535
MAX_HOST_NAME_LEN = 253
"""The DNS limit on a name, which also bounds what we echo back in errors."""
_MAX_LABEL_LEN = 63
_LABEL_PUNCTUATION = frozenset("-_")


class Address(NamedTuple):
    """A host (an IP literal or a host name, IPv6 without brackets) and a port."""

    host: str
    port: int


def format_address(addr: tuple[str, int]) -> str:
    """``host:port``, with an IPv6 host in brackets: what :func:`parse_address` reads back."""
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str, *, default_port: int | None = None, allow_port_zero: bool = False) -> Address:
    """Read ``host:port``, ``[v6]:port``, or a host alone when ``default_port`` is given.

    Raises :class:`~hyphal.errors.InvalidAddress` (an ``InvalidInput``) naming
    what is wrong. ``allow_port_zero`` accepts port 0, which only a listener
    means ("any free port").
    """
    if not isinstance(text, str):
        raise InvalidAddress(f"an address is text (host:port), not {type(text).__name__}")
    if len(text) > MAX_HOST_NAME_LEN + 8:  # the longest name, brackets, a colon and a port
        raise InvalidAddress(f"an address is at most {MAX_HOST_NAME_LEN + 8} characters")
    port_text: str | None
    if text.startswith("["):
        host, port_text = _split_bracketed(text)
        _check_ipv6(host, text)
    else:
        if text.count(":") > 1:
            raise InvalidAddress(f"an IPv6 address goes in brackets, as in [::1]:7300: {text!r}")
        host, colon, after = text.partition(":")
        if colon and not after:
            raise InvalidAddress(f"no port after the colon: {text!r}")
        _check_host(host, text)
        port_text = after if colon else None
    if port_text is None:
        if default_port is None:
            raise InvalidAddress(f"no port: an address is host:port, not {text!r}")
        port = _check_port(default_port, text, allow_port_zero)
    else:
        if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
            raise InvalidAddress(f"the port is not a number from 1 to {MAX_PORT}: {text!r}")
        port = _check_port(int(port_text), text, allow_port_zero)
    return Address(host, port)


def _split_bracketed(text: str) -> tuple[str, str | None]:
    """``[host]:port`` or ``[host]`` as (host, port text or None)."""
    host, bracket, rest = text[1:].partition("]")
    if not bracket:
        raise InvalidAddress(f"an IPv6 address in brackets lacks its ']': {text!r}")
    if not rest:
        return host, None
    if not rest.startswith(":") or len(rest) == 1:
        raise InvalidAddress(f"after [IPv6] comes :port: {text!r}")
    return host, rest[1:]


def _check_ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise InvalidAddress(f"not an IPv6 address in the brackets: {text!r}") from None


def _check_host(host: str, text: str) -> None:
    """An IPv4 literal or a host name: dot-separated labels of letters, digits, '-' and '_'."""
    if not host:
        raise InvalidAddress(f"no host before the port: {text!r}")
    labels = host.split(".")
    if all(label.isascii() and label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidAddress(f"not an IPv4 address: {text!r}") from None
        return
    if len(host) > MAX_HOST_NAME_LEN:
        raise InvalidAddress(f"a host name is at most {MAX_HOST_NAME_LEN} characters")
    for label in labels:
        if not label or len(label) > _MAX_LABEL_LEN:
            raise InvalidAddress(f"a host name's parts are 1 to {_MAX_LABEL_LEN} characters: {text!r}")
        if not all(c.isalnum() or c in _LABEL_PUNCTUATION for c in label):
            raise InvalidAddress(f"a host name holds only letters, digits, '-', '_' and '.': {text!r}")


def _check_port(port: int, text: str, allow_zero: bool) -> int:
    low = 0 if allow_zero else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= MAX_PORT:
        raise InvalidAddress(f"the port is not a number from {low} to {MAX_PORT}: {text!r}")
    return port


__all__ = ["MAX_PORT", "Address", "format_address", "parse_address"]
