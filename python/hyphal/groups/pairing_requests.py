"""Requests to become a writer (sans-I/O): their bytes, and the pending ones an authorised device holds.

A device that paired (§17.3) holds the group read-only. It asks to write by
sending a *request* on the group's ephemeral message channel (topic
:data:`REQUEST_TOPIC`): its device key, its name ("Firefox on Ubuntu
64-bit") and nothing else; the channel signs the envelope with the device
key, seals it for the group and drops duplicates and replays. Both screens
show the same short verification code, a hash of the group key and the
device key, so the person approving can tell that the request they see
comes from the device in front of them. Any authorised device lists the
request (:class:`PendingRequests`) and approves it (a membership log
APPROVE, §17.1) or denies it (a message on :data:`DENY_TOPIC`, so the
other authorised devices drop it too). Byte layouts: docs/PROTOCOL.md §17.4.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from typing_extensions import Buffer

from hyphal.codec import Reader, Writer
from hyphal.errors import DecodeError, InvalidInput, Unauthorized
from hyphal.groups.invite import b32
from hyphal.groups.membership import MembershipState
from hyphal.hashing import derive_key

log = logging.getLogger("hyphal.pairing")

REQUEST_TOPIC = "hyphal/pair/request"
DENY_TOPIC = "hyphal/pair/deny"
REQUEST_VERSION = 1
MAX_NAME = 64
REQUEST_TTL = 3600.0
"""How long a request is held (and the message carrying it travels): an hour to walk to the other device."""
MAX_PENDING = 64
_VERIFY_CONTEXT = "hyphal 2026-12 pairing verification code"


def verification_code(group_key: bytes, device_key: bytes) -> str:
    """Six digits both screens show for ``device_key``'s request: ``"123 456"``."""
    digest = derive_key(_VERIFY_CONTEXT, group_key + device_key)
    number = int.from_bytes(digest[:8], "little") % 1_000_000
    return f"{number // 1000:03d} {number % 1000:03d}"


def request_id(device_key: bytes) -> str:
    """The short id people type to approve or deny a device's request."""
    return b32(device_key)[:10]


@dataclass(frozen=True, slots=True)
class Request:
    device: bytes
    name: str

    def encode(self) -> bytes:
        w = Writer().u8(REQUEST_VERSION, "version").fixed(self.device, 32, "device key")
        return w.bytes8(self.name.encode("utf-8")[:MAX_NAME], MAX_NAME, "name").to_bytes()


def decode_request(data: Buffer) -> Request:
    r = Reader(bytes(data), "pairing request")
    if r.u8("version") != REQUEST_VERSION:
        raise DecodeError("pairing request version not supported")
    device = r.take(32, "device key")
    try:
        name = r.bytes8(MAX_NAME, "name").decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a device name is UTF-8") from None
    r.expect_end()
    return Request(device, name)


def encode_deny(device: bytes) -> bytes:
    return bytes((REQUEST_VERSION,)) + device


def decode_deny(data: Buffer) -> bytes:
    raw = bytes(data)
    if len(raw) != 33 or raw[0] != REQUEST_VERSION:
        raise DecodeError("a pairing denial is a version byte and a 32-byte device key")
    return raw[1:]


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: str
    device: bytes
    name: str
    code: str
    received: float
    """When it arrived here (the caller's clock)."""


@dataclass(slots=True)
class PendingRequests:
    """The requests one device holds for one group, newest last."""

    group_key: bytes
    requests: dict[bytes, PendingRequest] = field(default_factory=dict)

    def take(self, sender: bytes, body: bytes, state: MembershipState, now: float) -> PendingRequest | None:
        """A request message from ``sender`` (the channel verified its signature). Returns it when it
        is new here; ``None`` for a repeat. :class:`DecodeError` if malformed, :class:`Unauthorized`
        if it names another device than its signer or a device that was removed."""
        request = decode_request(body)
        if request.device != sender:
            raise Unauthorized("a pairing request names a device other than the one that signed it")
        if request.device in state.removed:
            raise Unauthorized("a pairing request from a device removed from the group")
        self.expire(now)
        if state.active and state.is_writer(request.device):
            return None  # approved already (perhaps by another device): nothing to ask
        if request.device in self.requests:
            return None
        if len(self.requests) >= MAX_PENDING:
            raise Unauthorized(f"{MAX_PENDING} pairing requests are pending here already")
        pending = PendingRequest(
            request_id(request.device),
            request.device,
            request.name,
            verification_code(self.group_key, request.device),
            now,
        )
        self.requests[request.device] = pending
        return pending

    def expire(self, now: float) -> None:
        for device, pending in list(self.requests.items()):
            if pending.received + REQUEST_TTL <= now:
                del self.requests[device]

    def settle(self, state: MembershipState) -> None:
        """Drop requests the membership log has answered (approved or removed elsewhere)."""
        for device in list(self.requests):
            if (state.is_writer(device) and state.active) or device in state.removed:
                del self.requests[device]

    def find(self, ref: str) -> PendingRequest:
        """A pending request by its id (or a unique prefix of it, or of its device key in hex)."""
        ref = ref.strip().lower()
        found = [
            p
            for p in self.requests.values()
            if ref and (p.id.startswith(ref) or p.device.hex().startswith(ref))
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            raise InvalidInput(f"no pending pairing request {ref!r} (see `hyphal pair requests`)")
        raise InvalidInput(f"{ref!r} names {len(found)} requests; use more of the id")

    def drop(self, device: bytes) -> None:
        self.requests.pop(device, None)

    def pending(self) -> list[PendingRequest]:
        return sorted(self.requests.values(), key=lambda p: (p.received, p.id))


__all__ = [
    "DENY_TOPIC",
    "REQUEST_TOPIC",
    "REQUEST_TTL",
    "PendingRequest",
    "PendingRequests",
    "Request",
    "decode_deny",
    "decode_request",
    "encode_deny",
    "request_id",
    "verification_code",
]
