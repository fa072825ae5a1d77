"""Invite URIs: round trip, strict parsing, and a secret that never leaks into text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.errors import DecodeError, InvalidInput
from hyphal.groups.invite import Invite, b32

KEY, SECRET = bytes(range(32)), bytes(range(100, 132))


def test_round_trip_with_name_and_peers() -> None:
    invite = Invite(KEY, SECRET, "Family photos & more", ("127.0.0.1:4000", "[::1]:4001"))
    uri = invite.to_uri()
    assert uri.startswith(f"hyphal://group/{b32(KEY)}?s=")
    assert Invite.from_uri(uri) == invite
    assert Invite.from_uri(uri.replace(b32(KEY), b32(KEY).upper())) == invite  # base32 is case-blind


@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    secret=st.binary(min_size=32, max_size=32),
    name=st.text(max_size=50),
)
def test_round_trip_any_keys_and_names(key: bytes, secret: bytes, name: str) -> None:
    invite = Invite(key, secret, name)
    assert Invite.from_uri(invite.to_uri()) == invite


def test_the_secret_never_shows_in_repr_str_or_errors() -> None:
    invite = Invite(KEY, SECRET, "g")
    secret_text = b32(SECRET)
    assert secret_text not in repr(invite)
    assert secret_text not in str(invite)
    assert SECRET.hex() not in repr(invite)
    uri = invite.to_uri()
    for broken in (uri + "&s=" + secret_text, uri.replace("hyphal://", "http://"), uri[:-3] + "&n=a&n=b"):
        with pytest.raises(DecodeError) as caught:
            Invite.from_uri(broken)
        assert secret_text not in str(caught.value)


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "hyphal://group/",
        f"hyphal://feed/{b32(KEY)}?s={b32(SECRET)}",
        f"hyphal://group/{b32(KEY)[:-1]}?s={b32(SECRET)}",
        f"hyphal://group/{b32(KEY)}",
        f"hyphal://group/{b32(KEY)}?s={b32(SECRET)[:-2]}",
        f"hyphal://group/{b32(KEY)}?s={b32(SECRET)[:-1]}1",  # not base32
        f"hyphal://group/{b32(KEY)}?s={b32(SECRET)}&peer=nohost",
        f"hyphal://group/{b32(KEY)}?s={b32(SECRET)}&peer=::1:80",
        f"hyphal://group/{b32(KEY)}?s={b32(SECRET)}&peer=h:0",
        "hyphal://group/" + "a" * 5000,
    ],
)
def test_malformed_invites_are_decode_errors(uri: str) -> None:
    with pytest.raises(DecodeError):
        Invite.from_uri(uri)


def test_bad_fields_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        Invite(KEY, SECRET[:-1])
    with pytest.raises(InvalidInput):
        Invite(KEY, SECRET, peers=("a:1",) * 17)
