"""The groups' wire (groups/messages.py) and the sealing around it (groups/keys.py, groups/members.py).

Mode byte, then:

0. a repo operation (a block of a member's repo feed);
1. a member advert's body;
2. a group channel message; an ADVERT is then opened as a member does (signature,
   salt, sealing, body);
3. the group info record's plaintext;
4. a backup request, and the grant it carries;
5. a backup reply;
6. a sealed group value (the group info record) opened with the group's keys.

Everything that has an encoder must encode back to its bytes. Refusal:
``DecodeError``, ``DecryptionError`` or ``SignatureError``.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from unittest import mock

from fuzz.fixtures import keypair, mode
from fuzz.harness import Target
from hyphal.errors import DecodeError, DecryptionError, SignatureError
from hyphal.groups.keys import GroupKeys
from hyphal.groups.members import open_advert, sign_advert
from hyphal.groups.messages import (
    GROUP_INFO_LABEL,
    BackupReply,
    BackupRequest,
    Delete,
    GroupAdvert,
    MemberAdvert,
    Put,
    decode_group_info,
    decode_group_message,
    decode_op,
    decode_reply,
    decode_request,
    encode_advert,
    encode_auth,
    encode_group_info,
    encode_synced,
)

KEYS = GroupKeys(keypair(13).public_key, bytes(range(32)))
DEVICE = keypair(14)


def run(data: bytes) -> None:
    kind, data = mode(data, 7)
    if kind == 0:
        assert decode_op(data).encode() == data, "a repo operation is not canonical"
    elif kind == 1:
        assert MemberAdvert.decode(data).encode() == data, "a member advert is not canonical"
    elif kind == 2:
        message = decode_group_message(data)
        if isinstance(message, GroupAdvert):
            open_advert(KEYS, message.advert)
    elif kind == 3:
        assert encode_group_info(decode_group_info(data)) == data, "a group info is not canonical"
    elif kind == 4:
        request = decode_request(data)
        assert request.encode() == data, "a backup request is not canonical"
        GroupKeys.from_grant(request.grant)
    elif kind == 5:
        decode_reply(data)
    else:
        decode_group_info(KEYS.open_value(data, GROUP_INFO_LABEL))


def seeds() -> Iterator[bytes]:
    rng = random.Random(14)
    with mock.patch.object(secrets, "token_bytes", rng.randbytes):  # the same seeds on every run
        advert = MemberAdvert("laptop", keypair(15).public_key, ("192.0.2.1:7300", "[::1]:7301"))
        yield b"\x00" + Put("docs/notes.txt", bytes(range(32)), 1234, 1_700_000_000_000).encode()
        wrapped = KEYS.wrap_private(b"\x01" * 32, b"\x02" * 32, bytes(range(32)))
        yield b"\x00" + Put("photos/é.jpg", bytes(range(32)), 99, 0, wrapped).encode()
        yield b"\x00" + Delete("docs/old.txt").encode()
        yield b"\x01" + advert.encode()
        yield b"\x01" + MemberAdvert("backup", bytes(32), (), left=True, backup=True).encode()
        yield b"\x02" + encode_auth(bytes(range(32)))
        yield b"\x02" + encode_advert(sign_advert(KEYS, DEVICE, 3, advert))
        yield b"\x02" + encode_synced()
        yield b"\x03" + encode_group_info("family photos")
        yield b"\x04" + BackupRequest(KEYS.grant(), "family photos").encode()
        yield b"\x05" + BackupReply().encode()
        yield b"\x05" + BackupReply("not authorised here").encode()
        yield b"\x06" + KEYS.seal_value(encode_group_info("family photos"), GROUP_INFO_LABEL)


TARGET = Target("group_messages", run, (DecodeError, DecryptionError, SignatureError), seeds)
