"""``host:port`` text: every form the parser reads, every form it refuses, and the round trip."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.errors import InvalidAddress, InvalidInput
from hyphal.net.address import MAX_PORT, Address, format_address, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7400", ("127.0.0.1", 7400)),
        ("0.0.0.0:7300", ("0.0.0.0", 7300)),
        ("255.255.255.255:65535", ("255.255.255.255", 65535)),
        ("[::1]:9", ("::1", 9)),
        ("[2001:db8::7]:7300", ("2001:db8::7", 7300)),
        ("[::ffff:192.0.2.1]:1", ("::ffff:192.0.2.1", 1)),
        ("[fe80::1%eth0]:7300", ("fe80::1%eth0", 7300)),
        ("localhost:1", ("localhost", 1)),
        ("seed-1.example.org:7300", ("seed-1.example.org", 7300)),
        ("my_host.local:80", ("my_host.local", 80)),
        ("bücher.example:443", ("bücher.example", 443)),
        ("nope:1", ("nope", 1)),
        ("1.2.3.4a:5", ("1.2.3.4a", 5)),
        ("h:007", ("h", 7)),
    ],
)
def test_parses_every_form(text: str, expected: tuple[str, int]) -> None:
    addr = parse_address(text)
    assert addr == expected
    assert isinstance(addr, Address)
    assert (addr.host, addr.port) == expected


def test_an_address_is_the_tuple_sockets_and_the_dht_use() -> None:
    addr = parse_address("192.0.2.1:7300")
    host, port = addr
    assert (host, port) == ("192.0.2.1", 7300)
    assert addr == ("192.0.2.1", 7300)
    assert {addr: 1}[("192.0.2.1", 7300)] == 1


def test_default_port_fills_in_a_missing_one() -> None:
    assert parse_address("example.org", default_port=7300) == ("example.org", 7300)
    assert parse_address("192.0.2.1", default_port=1) == ("192.0.2.1", 1)
    assert parse_address("[::1]", default_port=7300) == ("::1", 7300)
    assert parse_address("example.org:9", default_port=7300) == ("example.org", 9)


def test_port_zero_only_where_allowed() -> None:
    assert parse_address("0.0.0.0:0", allow_port_zero=True) == ("0.0.0.0", 0)
    assert parse_address("[::]:0", allow_port_zero=True) == ("::", 0)
    with pytest.raises(InvalidAddress, match="from 1 to 65535"):
        parse_address("0.0.0.0:0")
    with pytest.raises(InvalidAddress, match="from 0 to 65535"):
        parse_address("0.0.0.0:65536", allow_port_zero=True)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nope", "no port"),
        ("", "no host"),
        ("example.org:", "no port after the colon"),
        (":7300", "no host"),
        ("[::1]", "no port"),
        ("::1", "in brackets"),
        ("::1:7300", "in brackets"),
        ("2001:db8::1:7300", "in brackets"),
        ("[::1:7300", "lacks its"),
        ("[::1]7300", "comes :port"),
        ("[::1]:", "comes :port"),
        ("[192.0.2.1]:7300", "not an IPv6"),
        ("[nope]:7300", "not an IPv6"),
        ("[]:7300", "not an IPv6"),
        ("host:0", "from 1 to 65535"),
        ("host:65536", "from 1 to 65535"),
        ("host:99999999", "from 1 to 65535"),
        ("host:-1", "from 1 to 65535"),
        ("host:+1", "from 1 to 65535"),
        ("host: 1", "from 1 to 65535"),
        ("host:1 ", "from 1 to 65535"),
        ("host:x", "from 1 to 65535"),
        ("host:١٢", "from 1 to 65535"),
        ("256.0.0.1:1", "not an IPv4"),
        ("1.2.3:1", "not an IPv4"),
        ("a..b:1", "parts are 1 to 63"),
        (".a:1", "parts are 1 to 63"),
        ("a.:1", "parts are 1 to 63"),
        ("x" * 64 + ".org:1", "parts are 1 to 63"),
        ("a b:1", "only letters"),
        (" a:1", "only letters"),
        ("a/b:1", "only letters"),
        ("a?b:1", "only letters"),
        ("a#b:1", "only letters"),
        ("a&b:1", "only letters"),
        ("a@b:1", "only letters"),
        ("a%b:1", "only letters"),
        ("a\x00b:1", "only letters"),
        ("x" * 300 + ":1", "at most"),
        (("a" * 62 + ".") * 4 + "ab:1", "at most 253"),
    ],
)
def test_refuses_every_bad_form(text: str, why: str) -> None:
    with pytest.raises(InvalidAddress, match=why):
        parse_address(text)


def test_refusals_are_invalid_input() -> None:
    """Callers that caught InvalidInput (or ValueError) from the old parsers still catch these."""
    assert issubclass(InvalidAddress, InvalidInput)
    assert issubclass(InvalidAddress, ValueError)
    with pytest.raises(InvalidInput):
        parse_address("nope")


def test_refuses_what_is_not_text_and_a_bad_default_port() -> None:
    with pytest.raises(InvalidAddress, match="is text"):
        parse_address(b"127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(InvalidAddress, match="from 1 to 65535"):
        parse_address("example.org", default_port=0)
    with pytest.raises(InvalidAddress, match="from 1 to 65535"):
        parse_address("example.org", default_port=True)


def test_format_brackets_ipv6() -> None:
    assert format_address(("127.0.0.1", 7400)) == "127.0.0.1:7400"
    assert format_address(Address("::1", 9)) == "[::1]:9"
    assert format_address(("fe80::1%eth0", 1)) == "[fe80::1%eth0]:1"
    assert format_address(("example.org", 7300)) == "example.org:7300"


_LABEL = st.text(st.sampled_from("abcxyz019_-"), min_size=1, max_size=20)
_HOST_NAMES = (
    st.lists(_LABEL, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda h: not all(part.isdigit() for part in h.split(".")))
)
_HOSTS = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded),
    _HOST_NAMES,
)


@given(_HOSTS, st.integers(1, MAX_PORT))
def test_parse_reads_what_format_writes(host: str, port: int) -> None:
    addr = Address(host, port)
    assert parse_address(format_address(addr)) == addr


@given(st.ip_addresses(v=6), st.integers(1, MAX_PORT))
def test_a_bare_ipv6_is_never_read_as_host_and_port(ip: ipaddress.IPv6Address, port: int) -> None:
    with pytest.raises(InvalidAddress):
        parse_address(f"{ip}:{port}")


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_as_invalid_address(text: str) -> None:
    try:
        addr = parse_address(text)
    except InvalidAddress:
        return
    assert 1 <= addr.port <= MAX_PORT
    assert parse_address(format_address(addr)) == (addr.host, addr.port)
