"""A device's identity and group memberships, sealed under a passphrase, to move it to new hardware.

``hyphal device export`` writes a bundle; ``hyphal device import`` on the new
machine writes the identity file (§13) and the groups file (§14.7) from it,
so the node continues as the same device: same device key, same groups,
same place in each membership log (§17.1). Its repos and blobs come back
from the group's members and backup servers; until its own repo has synced
from one of them, the device does not write it (a repo started afresh
under the same key would fork it).

The bundle (docs/PROTOCOL.md §17.6)::

    "HYDV" ‖ version u8 (1) ‖ opslimit u64le ‖ memlimit u64le ‖ salt[16] ‖ nonce[24]
    ‖ XChaCha20-Poly1305(Argon2id(passphrase, salt, opslimit, memlimit), nonce,
                         seed[32] ‖ groups JSON (UTF-8), ad = everything before it)
"""

from __future__ import annotations

import json
import secrets
import struct
from dataclasses import dataclass

import nacl.pwhash
from typing_extensions import Buffer

from hyphal import aead
from hyphal.errors import DecodeError, DecryptionError, InvalidInput, WrongPassphrase
from hyphal.groups.state import GroupRecord
from hyphal.keystore import KdfCost
from hyphal.signing import SEED_SIZE, KeyPair

MAGIC = b"HYDV"
VERSION = 1
_HEADER = struct.Struct("<4sBQQ16s24s")  # magic, version, opslimit, memlimit, salt, nonce
MAX_BUNDLE = 16 * 2**20


@dataclass(frozen=True, slots=True)
class DeviceBundle:
    identity: KeyPair
    groups: list[GroupRecord]


def _key(passphrase: str, salt: bytes, cost: KdfCost) -> bytes:
    if not passphrase:
        raise InvalidInput("an empty passphrase protects nothing")
    key: bytes = nacl.pwhash.argon2id.kdf(
        aead.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=cost.opslimit, memlimit=cost.memlimit
    )
    return key


def seal_bundle(bundle: DeviceBundle, passphrase: str, cost: KdfCost | None = None) -> bytes:
    cost = cost or KdfCost()
    salt = secrets.token_bytes(nacl.pwhash.argon2id.SALTBYTES)
    nonce = secrets.token_bytes(aead.NONCE_SIZE)
    header = _HEADER.pack(MAGIC, VERSION, cost.opslimit, cost.memlimit, salt, nonce)
    groups = json.dumps([record.to_wire() for record in bundle.groups], sort_keys=True).encode("utf-8")
    return header + aead.seal(_key(passphrase, salt, cost), nonce, bundle.identity.seed + groups, header)


def open_bundle(data: Buffer, passphrase: str) -> DeviceBundle:
    """The bundle's identity and groups. :class:`DecodeError` for a file that is not a bundle,
    :class:`WrongPassphrase` when ``passphrase`` does not open it (or it was altered)."""
    raw = bytes(data)
    if len(raw) > MAX_BUNDLE or len(raw) < _HEADER.size + SEED_SIZE + aead.TAG_SIZE:
        raise DecodeError("not a hyphal device bundle (wrong size)")
    magic, version, opslimit, memlimit, salt, nonce = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise DecodeError("not a hyphal device bundle")
    if version != VERSION:
        raise DecodeError(f"device bundle version {version} is not supported (this hyphal reads {VERSION})")
    try:
        cost = KdfCost(opslimit, memlimit)
    except InvalidInput as exc:
        raise DecodeError(f"the bundle asks for an unreasonable Argon2id cost: {exc}") from None
    header = raw[: _HEADER.size]
    try:
        plain = aead.open(_key(passphrase, salt, cost), nonce, raw[_HEADER.size :], header)
    except DecryptionError:
        raise WrongPassphrase("wrong passphrase for this device bundle (or the file was altered)") from None
    try:
        entries = json.loads(plain[SEED_SIZE:].decode("utf-8"))
        if not isinstance(entries, list):
            raise ValueError("not a list")
    except (UnicodeDecodeError, ValueError):
        raise DecodeError("the device bundle's groups are not a JSON list") from None
    return DeviceBundle(KeyPair(plain[:SEED_SIZE]), [GroupRecord.from_wire(e) for e in entries])


__all__ = ["DeviceBundle", "open_bundle", "seal_bundle"]
