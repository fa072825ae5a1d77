"""The group channel's and backup requests' messages: the bytes of §14.5 and §14.8, and
decoders that refuse bad input with DecodeError only (repo operations and adverts: see
test_groups_repo.py and test_groups_members.py)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.errors import DecodeError
from hyphal.groups.keys import GRANT_SIZE
from hyphal.groups.messages import (
    GROUP_INFO_LABEL,
    MAX_GROUP_MESSAGE,
    BackupReply,
    BackupRequest,
    GroupAdvert,
    GroupAuth,
    GroupSynced,
    MemberAdvert,
    decode_group_message,
    decode_reply,
    decode_request,
    encode_advert,
    encode_auth,
    encode_group_info,
    encode_synced,
    member_label,
)
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

MAC = bytes(range(32))
GRANT = bytes(range(GRANT_SIZE))


def test_group_channel_layout_and_round_trip() -> None:
    signed = SignedValue.sign(KeyPair(bytes(32)), 7, b"sealed advert", salt=b"topic")
    assert encode_auth(MAC) == b"\x01" + MAC
    assert encode_advert(signed) == b"\x02" + signed.encode()
    assert encode_synced() == b"\x03"
    assert decode_group_message(encode_auth(MAC)) == GroupAuth(MAC)
    assert decode_group_message(encode_advert(signed)) == GroupAdvert(signed)
    assert decode_group_message(encode_synced()) == GroupSynced()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" + MAC[:31],
        b"\x01" + MAC + b"\x00",
        b"\x02",
        b"\x02garbage",
        b"\x03\x00",
        b"\x04",
        b"\x00" + MAC,
        b"\x01" + bytes(MAX_GROUP_MESSAGE),
    ],
    ids=[
        "empty",
        "short auth",
        "long auth",
        "empty advert",
        "bad advert",
        "synced body",
        "kind 4",
        "kind 0",
        "huge",
    ],
)
def test_bad_group_messages_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_group_message(data)


def test_backup_layout_and_round_trip() -> None:
    request = BackupRequest(GRANT, "family")
    assert request.encode() == b"\x01" + GRANT + b"\x06family"
    assert decode_request(request.encode()) == request
    assert BackupReply().encode() == b"\x02"
    assert BackupReply("no").encode() == b"\x03no"
    assert decode_reply(b"\x02") == BackupReply()
    assert decode_reply(b"\x03no") == BackupReply("no")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" + GRANT,
        b"\x02" + GRANT + b"\x00",
        b"\x01" + GRANT + b"\x05abc",
        b"\x01" + GRANT + b"\x01\xff",
        b"\x01" + GRANT + b"\xc9" + b"a" * 201,
    ],
    ids=["empty", "no name length", "wrong kind", "short name", "not utf-8", "name too long"],
)
def test_bad_backup_requests_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_request(data)


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x02\x00", b"\x03" + b"x" * 201, b"\x04"])
def test_bad_backup_replies_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_reply(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_decode_errors_or_decodes_canonically(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert _encode_group_message(decode_group_message(data)) == data
    with contextlib.suppress(DecodeError):
        assert decode_request(data).encode() == data
    with contextlib.suppress(DecodeError):
        decode_reply(data)  # a reply's reason is shown, not kept: it may decode lossily


def _encode_group_message(message: GroupAuth | GroupAdvert | GroupSynced) -> bytes:
    if isinstance(message, GroupAuth):
        return encode_auth(message.mac)
    if isinstance(message, GroupAdvert):
        return encode_advert(message.advert)
    return encode_synced()


def test_labels_and_group_info() -> None:
    key = bytes(range(32))
    assert member_label(key) == b"member " + key
    assert GROUP_INFO_LABEL == b"group info"
    assert encode_group_info("ünï") == "ünï".encode()
    # An advert's body, as §14.4 lays it out.
    advert = MemberAdvert("al", key, ("1.2.3.4:5",), left=True, backup=True)
    assert advert.encode() == b"\x01\x03" + key + b"\x02al" + b"\x01" + b"\x091.2.3.4:5"
