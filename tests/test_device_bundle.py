"""Device bundles (§17.6): identity and groups sealed under a passphrase with Argon2id."""

from __future__ import annotations

import nacl.pwhash
import pytest

from hyphal.errors import DecodeError, WrongPassphrase
from hyphal.groups.device_bundle import DeviceBundle, open_bundle, seal_bundle
from hyphal.groups.state import GroupRecord
from hyphal.keystore import KdfCost
from hyphal.signing import KeyPair

FAST = KdfCost(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def bundle() -> DeviceBundle:
    record = GroupRecord(bytes(range(32)), "family", "laptop", secret=bytes(32), log=[b"entry"])
    return DeviceBundle(KeyPair(bytes([3]) * 32), [record])


def test_a_bundle_round_trips_and_hides_its_contents() -> None:
    sealed = seal_bundle(bundle(), "correct horse", FAST)
    assert b"family" not in sealed
    assert bytes([3]) * 32 not in sealed
    opened = open_bundle(sealed, "correct horse")
    assert opened.identity.public_key == bundle().identity.public_key
    assert opened.groups == bundle().groups


def test_a_wrong_passphrase_or_an_altered_bundle_is_a_clear_error() -> None:
    sealed = seal_bundle(bundle(), "correct horse", FAST)
    with pytest.raises(WrongPassphrase, match="wrong passphrase for this device bundle"):
        open_bundle(sealed, "battery staple")
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(WrongPassphrase):
        open_bundle(altered, "correct horse")
    for bad in (b"", b"HYID" + sealed[4:], sealed[:40]):
        with pytest.raises(DecodeError):
            open_bundle(bad, "correct horse")
    too_costly = sealed[:5] + (2**62).to_bytes(8, "little") + sealed[13:]
    with pytest.raises(DecodeError, match="unreasonable"):
        open_bundle(too_costly, "correct horse")
