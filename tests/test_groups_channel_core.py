"""The ephemeral message channel's format and state machine, without I/O: envelopes, the checks in
order, the seen-id window (and its file), rate limits, duplicated and reordered delivery."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import aead
from hyphal.errors import (
    DecodeError,
    DecryptionError,
    InvalidAddress,
    InvalidInput,
    RateLimited,
    SignatureError,
    Unauthorized,
)
from hyphal.groups.channel_core import Accepted, ChannelLimits, Duplicate, MessageInbox, SeenWindow
from hyphal.groups.channel_format import (
    MAX_BODY,
    MAX_ENVELOPE,
    decode_envelope,
    message_key,
    open_envelope,
    seal_message,
)
from hyphal.groups.channel_seen import ENTRY, MAGIC, SeenLog
from hyphal.groups.keys import GroupKeys, new_group_secret
from hyphal.net.endpoint import TCP, WEBSOCKET, format_endpoint, parse_endpoint, tcp_addresses
from hyphal.signing import KeyPair

NOW = 1_800_000_000_000
CHANNEL = bytes(range(32))
KEY = bytes(32 * [7])
ALICE = KeyPair(bytes(32 * [1]))


def envelope(
    body: bytes = b"hello",
    *,
    sender: KeyPair = ALICE,
    key: bytes = KEY,
    channel: bytes = CHANNEL,
    sent_ms: int = NOW,
    ttl_ms: int = 60_000,
    topic: str = "",
    id_: bytes | None = None,
) -> bytes:
    return seal_message(
        sender,
        key,
        channel,
        id=id_ or secrets.token_bytes(16),
        nonce=secrets.token_bytes(aead.NONCE_SIZE),
        sent_ms=sent_ms,
        ttl_ms=ttl_ms,
        topic=topic,
        body=body,
    )


def test_an_envelope_round_trips_and_anyone_can_check_its_signature() -> None:
    raw = envelope(b"Firefox on Ubuntu 64-bit", topic="pair/request")
    env = decode_envelope(raw, CHANNEL)  # no key needed: what a relay does
    assert env.sender == ALICE.public_key
    assert (env.sent_ms, env.ttl_ms, env.expires_ms) == (NOW, 60_000, NOW + 60_000)
    assert b"Firefox" not in raw
    message = open_envelope(env, KEY, CHANNEL)
    assert (message.topic, message.body) == ("pair/request", b"Firefox on Ubuntu 64-bit")


def test_the_layout_is_the_documented_one() -> None:
    id_ = bytes(range(16))
    raw = envelope(b"x", id_=id_, ttl_ms=1000)
    assert raw[0] == 1
    assert raw[1:17] == id_
    assert int.from_bytes(raw[17:25], "little") == NOW
    assert int.from_bytes(raw[25:29], "little") == 1000
    assert raw[29:61] == ALICE.public_key
    size = int.from_bytes(raw[85:87], "little")
    assert size == 1 + 0 + 1 + aead.TAG_SIZE  # topic length byte, no topic, the body, the tag
    assert len(raw) == 87 + size + 64


def test_forged_altered_unsigned_oversized_and_malformed_envelopes_are_refused() -> None:
    raw = envelope()
    with pytest.raises(SignatureError):
        decode_envelope(raw, bytes(32))  # another group's channel
    altered = bytearray(raw)
    altered[90] ^= 1  # a ciphertext byte: the signature covers it
    with pytest.raises(SignatureError):
        decode_envelope(bytes(altered), CHANNEL)
    mallory = KeyPair.generate()
    forged = raw[:29] + mallory.public_key + raw[61:]  # claims another sender
    with pytest.raises(SignatureError):
        decode_envelope(forged, CHANNEL)
    with pytest.raises(DecodeError):
        decode_envelope(raw[:-64], CHANNEL)  # unsigned
    with pytest.raises(DecodeError):
        decode_envelope(raw + b"\0", CHANNEL)
    with pytest.raises(DecodeError):
        decode_envelope(b"\x01" + bytes(MAX_ENVELOPE), CHANNEL)
    with pytest.raises(DecodeError):
        decode_envelope(b"\x02" + raw[1:], CHANNEL)
    with pytest.raises(DecodeError):
        decode_envelope(b"", CHANNEL)
    with pytest.raises(DecryptionError):
        open_envelope(decode_envelope(raw, CHANNEL), bytes(32), CHANNEL)


def test_sending_checks_size_ttl_and_topic() -> None:
    envelope(bytes(MAX_BODY))
    with pytest.raises(InvalidInput):
        envelope(bytes(MAX_BODY + 1))
    with pytest.raises(InvalidInput):
        envelope(ttl_ms=0)
    with pytest.raises(InvalidInput):
        envelope(ttl_ms=3_600_001)
    with pytest.raises(InvalidInput):
        envelope(topic="t" * 65)


def test_the_message_key_needs_the_secret() -> None:
    keys = GroupKeys(KeyPair.generate().public_key, new_group_secret())
    key = message_key(keys)
    assert len(key) == 32
    assert key not in keys.grant()
    with pytest.raises(InvalidInput):
        message_key(GroupKeys.from_grant(keys.grant()))


def test_a_message_is_delivered_once_and_a_relay_forwards_without_reading() -> None:
    device, relay = MessageInbox(), MessageInbox()
    raw = envelope(b"secret words")
    forwarded = relay.receive(CHANNEL, raw, None, NOW)
    assert isinstance(forwarded, Accepted)
    assert forwarded.message is None
    first = device.receive(CHANNEL, raw, KEY, NOW + 1)
    assert isinstance(first, Accepted)
    assert first.message is not None
    assert first.message.body == b"secret words"
    assert isinstance(device.receive(CHANNEL, raw, KEY, NOW + 2), Duplicate)
    assert isinstance(relay.receive(CHANNEL, raw, None, NOW + 2), Duplicate)


def test_time_checks_expired_replays_and_future_messages() -> None:
    inbox = MessageInbox()
    with pytest.raises(Unauthorized, match="expired"):
        inbox.receive(CHANNEL, envelope(sent_ms=NOW - 120_000), KEY, NOW)
    with pytest.raises(InvalidInput, match="future"):
        inbox.receive(CHANNEL, envelope(sent_ms=NOW + 61_000), KEY, NOW)
    inbox.receive(CHANNEL, envelope(sent_ms=NOW + 59_000), KEY, NOW)  # within the skew
    raw = envelope()
    inbox.receive(CHANNEL, raw, KEY, NOW)
    # Within its TTL a replay is a duplicate; after it, expired (the window forgot the id).
    assert isinstance(inbox.receive(CHANNEL, raw, KEY, NOW + 60_000), Duplicate)
    inbox.seen.expire(NOW + 60_001)
    with pytest.raises(Unauthorized):
        inbox.receive(CHANNEL, raw, KEY, NOW + 60_001)


def test_a_refused_message_changes_nothing() -> None:
    inbox = MessageInbox()
    raw = envelope()
    with pytest.raises(DecryptionError):
        inbox.receive(CHANNEL, raw, bytes(32), NOW)
    assert len(inbox.seen) == 0
    assert isinstance(inbox.receive(CHANNEL, raw, KEY, NOW), Accepted)  # the id was not burnt


def test_each_device_is_rate_limited_on_its_own() -> None:
    limits = ChannelLimits(rate=1.0, burst=2)
    inbox = MessageInbox(limits)  # a receiver allows twice the sender's own limit
    for _ in range(4):
        inbox.receive(CHANNEL, envelope(), KEY, NOW)
    refused = envelope()
    with pytest.raises(RateLimited):
        inbox.receive(CHANNEL, refused, KEY, NOW)
    assert (ALICE.public_key, decode_envelope(refused, CHANNEL).id) not in inbox.seen
    inbox.receive(CHANNEL, envelope(sender=KeyPair.generate()), KEY, NOW)  # another device is fine
    inbox.receive(CHANNEL, refused, KEY, NOW + 500)  # half a second refills one (at 2/s)
    sender = MessageInbox(limits)
    for _ in range(2):
        sender.send(
            ALICE,
            KEY,
            CHANNEL,
            id=secrets.token_bytes(16),
            nonce=bytes(24),
            now_ms=NOW,
            ttl_ms=1000,
            topic="",
            body=b"x",
        )
    with pytest.raises(RateLimited, match="try again in"):
        sender.send(
            ALICE,
            KEY,
            CHANNEL,
            id=secrets.token_bytes(16),
            nonce=bytes(24),
            now_ms=NOW,
            ttl_ms=1000,
            topic="",
            body=b"x",
        )


def test_a_full_window_refuses_new_messages_rather_than_forget_an_id_early() -> None:
    window = SeenWindow(2)
    window.add((b"a", b"1"), NOW + 10, NOW)
    window.add((b"a", b"2"), NOW + 10, NOW)
    with pytest.raises(RateLimited):
        window.add((b"a", b"3"), NOW + 10, NOW)
    window.add((b"a", b"3"), NOW + 10, NOW + 11)  # the others expired meanwhile
    assert len(window) == 1


def test_own_messages_echoed_back_are_duplicates() -> None:
    inbox = MessageInbox()
    sent = inbox.send(
        ALICE, KEY, CHANNEL, id=bytes(16), nonce=bytes(24), now_ms=NOW, ttl_ms=1000, topic="t", body=b"x"
    )
    assert isinstance(inbox.receive(CHANNEL, sent.raw, KEY, NOW + 5), Duplicate)


@given(
    count=st.integers(1, 12),
    order=st.lists(st.integers(0, 11), min_size=1, max_size=60),
)
def test_duplicated_and_reordered_arrivals_deliver_each_message_once(count: int, order: list[int]) -> None:
    """Any arrival order with any repeats (relays and direct paths): each message once, never another."""
    sent = [envelope(str(i).encode()) for i in range(count)]
    inbox = MessageInbox(ChannelLimits(burst=100))
    delivered: list[bytes] = []
    arrivals = [sent[i % count] for i in order] + sent  # every message arrives at least once
    for raw in arrivals:
        result = inbox.receive(CHANNEL, raw, KEY, NOW)
        if isinstance(result, Accepted):
            assert result.message is not None
            delivered.append(result.message.body)
    assert sorted(delivered) == sorted(str(i).encode() for i in range(count))


def test_the_window_survives_a_restart_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "messages-seen"
    log = SeenLog(path)
    inbox = MessageInbox()
    inbox.load(log.load(NOW), NOW)
    raw = envelope()
    accepted = inbox.receive(CHANNEL, raw, KEY, NOW)
    assert isinstance(accepted, Accepted)
    env = accepted.envelope
    log.append(env.sender, env.id, env.expires_ms, len(inbox.seen))
    log.append(b"\x01" * 32, b"\x02" * 16, NOW - 1, 2)  # already expired by the restart
    log.close()
    with path.open("ab") as torn:
        torn.write(b"\x09" * 20)  # a crash mid-append
    restarted = MessageInbox()
    reloaded = SeenLog(path)
    restarted.load(reloaded.load(NOW + 10), NOW + 10)
    assert isinstance(restarted.receive(CHANNEL, raw, KEY, NOW + 10), Duplicate)
    reloaded.close()
    assert path.read_bytes() == MAGIC + ENTRY.pack(env.sender, env.id, env.expires_ms)  # compacted


def test_a_file_that_is_not_a_window_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "messages-seen"
    path.write_bytes(b"something else entirely")
    log = SeenLog(path)
    assert log.load(NOW) == []
    log.close()
    assert path.read_bytes() == MAGIC


def test_endpoints_name_their_transport() -> None:
    assert parse_endpoint("127.0.0.1:7300") == (TCP, ("127.0.0.1", 7300))
    assert parse_endpoint("ws://127.0.0.1:7301") == (WEBSOCKET, ("127.0.0.1", 7301))
    assert parse_endpoint("WS://[::1]:7301") == (WEBSOCKET, ("::1", 7301))
    assert format_endpoint(parse_endpoint("ws://[::1]:7301")) == "ws://[::1]:7301"
    assert tcp_addresses(["ws://a.example:1", "b.example:2"]) == [("b.example", 2)]
    for bad in ("ws://h:1/path", "wss://h:1", "http://h:1", "ws://", "ws://h"):
        with pytest.raises(InvalidAddress):
            parse_endpoint(bad)
