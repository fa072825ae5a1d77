"""The pairing exchange (§17.3) and requests to write (§17.4), sans-I/O: SPAKE2 with a code or a
password, wrong secrets, the guess limit, malformed messages, and bad requests."""

from __future__ import annotations

import pytest

from hyphal.errors import DecodeError, InvalidInput, ProtocolError, Unauthorized
from hyphal.groups.membership import MembershipLog
from hyphal.groups.pairing import (
    Failed,
    GuessLimit,
    Hello,
    Paired,
    PairingInitiator,
    PairingResponder,
    SecretKind,
    Send,
    decode,
    encode,
    harden_password,
    new_code,
    normalize_code,
)
from hyphal.groups.pairing_requests import (
    PendingRequests,
    Request,
    decode_request,
    request_id,
    verification_code,
)
from hyphal.signing import KeyPair

JOINER, DEVICE = bytes([1]) * 32, bytes([2]) * 32
HH = bytes([7]) * 32
INVITE = "hyphal://group/x?s=y"


def run(
    joiner_secret: bytes,
    device_secrets: dict[SecretKind, bytes],
    *,
    allowed: bool = True,
    kind: SecretKind = SecretKind.CODE,
    joiner_hh: bytes = HH,
) -> tuple[str | Exception, list[object]]:
    """One whole run; the joiner's outcome and what the device's side reported."""
    initiator = PairingInitiator(kind, joiner_secret, "laptop", JOINER, DEVICE, joiner_hh)
    responder = PairingResponder(DEVICE, JOINER, HH, INVITE, device_secrets, allowed)
    reported: list[object] = []
    message = initiator.start()
    while True:
        replies = responder.receive(message)
        reported += [a for a in replies if not isinstance(a, Send)]
        sends = [a for a in replies if isinstance(a, Send)]
        if not sends:
            return ProtocolError("the device went quiet"), reported
        try:
            out = initiator.receive(sends[0].data)
        except (Unauthorized, ProtocolError, DecodeError) as exc:
            return exc, reported
        if isinstance(out, str):
            return out, reported
        message = out


def test_the_right_code_pairs_and_hands_over_the_invite() -> None:
    code = normalize_code(new_code())
    outcome, reported = run(code, {SecretKind.CODE: code})
    assert outcome == INVITE
    assert reported == [Paired(JOINER, "laptop")]


def test_a_password_pairs_through_its_argon2id_hash() -> None:
    hashed = harden_password("correct horse", bytes(32))
    assert hashed != harden_password("correct horse", bytes([1]) * 32)  # salted by the group
    outcome, _ = run(hashed, {SecretKind.PASSWORD: hashed}, kind=SecretKind.PASSWORD)
    assert outcome == INVITE


def test_a_wrong_secret_a_limit_or_nothing_open_is_refused_and_reveals_nothing() -> None:
    code = normalize_code("abcd-2345")
    outcome, reported = run(normalize_code("abcd-2346"), {SecretKind.CODE: code})
    assert isinstance(outcome, Unauthorized)
    assert "wrong pairing code" in str(outcome)
    assert [type(r) for r in reported] == [Failed]
    outcome, _ = run(code, {SecretKind.CODE: code}, allowed=False)
    assert isinstance(outcome, Unauthorized)
    assert "too many" in str(outcome)
    outcome, _ = run(code, {SecretKind.PASSWORD: code})
    assert isinstance(outcome, Unauthorized)
    assert "no pairing code" in str(outcome)
    # The same secret on another connection (another handshake hash) does not confirm.
    outcome, _ = run(code, {SecretKind.CODE: code}, joiner_hh=bytes([8]) * 32)
    assert isinstance(outcome, Unauthorized)


def test_the_guess_limit_counts_runs_per_window() -> None:
    limit = GuessLimit(limit=3, window=10.0)
    assert [limit.take(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert limit.take(10.5) is True  # the first run left the window


def test_codes_and_messages_are_checked() -> None:
    code = new_code()
    assert len(code) == 9
    assert code[4] == "-"
    assert normalize_code(code.upper().replace("-", " ")) == normalize_code(code)
    for bad in ("abcd-234", "abcd-234o", "", "abcd-2345-6"):
        with pytest.raises(InvalidInput):
            normalize_code(bad)
    hello = Hello(SecretKind.CODE, b"A" + bytes(32), "Firefox on Ubuntu 64-bit")
    assert decode(encode(hello)) == hello
    for bad in (
        b"",
        b"\x09",
        encode(hello)[:-1],
        encode(hello) + b"\0",
        b"\x01\x02" + encode(hello)[2:],
        b"\x05\x09\x00",
    ):
        with pytest.raises(DecodeError):
            decode(bad)
    responder = PairingResponder(DEVICE, JOINER, HH, INVITE, {}, True)
    [failed] = responder.receive(b"\x03" + bytes(32))  # CONFIRM before HELLO
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, ProtocolError)


def test_requests_are_checked_and_kept_once() -> None:
    group = KeyPair(bytes([5]) * 32)
    origin = KeyPair(bytes([6]) * 32)
    log = MembershipLog(group.public_key)
    log.genesis(group, [origin.public_key])
    pending = PendingRequests(group.public_key)
    body = Request(JOINER, "tablet").encode()
    assert decode_request(body) == Request(JOINER, "tablet")
    taken = pending.take(JOINER, body, log.state, now=0.0)
    assert taken is not None
    assert taken.id == request_id(JOINER)
    assert taken.code == verification_code(group.public_key, JOINER)
    assert len(taken.code) == 7
    assert pending.take(JOINER, body, log.state, now=1.0) is None  # a repeat
    with pytest.raises(Unauthorized, match="other than the one that signed it"):
        pending.take(DEVICE, body, log.state, now=1.0)
    for bad in (b"", body[:-1], b"\x02" + body[1:], body + b"\0"):
        with pytest.raises(DecodeError):
            pending.take(JOINER, bad, log.state, now=1.0)
    log.approve(origin, DEVICE, "other")
    log.remove(origin, DEVICE, 0)
    with pytest.raises(Unauthorized, match="removed"):
        pending.take(DEVICE, Request(DEVICE, "again").encode(), log.state, now=1.0)
    log.approve(origin, JOINER, "tablet")
    pending.settle(log.state)
    assert pending.pending() == []  # answered by the log
    third = KeyPair(bytes([9]) * 32).public_key
    assert pending.take(third, Request(third, "x").encode(), log.state, now=2.0) is not None
    pending.expire(now=2.0 + 3600.0)  # a request is held an hour
    assert pending.pending() == []
    with pytest.raises(InvalidInput, match="no pending"):
        pending.find("zzz")
