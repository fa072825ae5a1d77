"""Group key derivation and sealed group values."""

from __future__ import annotations

import pytest

from hyphal import hashing
from hyphal.errors import DecodeError, DecryptionError, InvalidInput
from hyphal.groups.keys import MAX_VALUE_SIZE, GroupKeys, new_group_secret

KEY = bytes(range(32))


def test_every_purpose_has_its_own_key_bound_to_secret_and_group() -> None:
    secret = new_group_secret()
    keys = GroupKeys(KEY, secret)
    derived = {keys.discovery_key, keys.value_key, keys.capability_key, keys.read_secret}
    assert len(derived) == 4
    assert secret not in derived
    assert keys.discovery_key == hashing.derive_key("hyphal 2026-11 group discovery key", secret + KEY)
    other_secret = GroupKeys(KEY, new_group_secret())
    other_group = GroupKeys(bytes(32), secret)
    assert keys.discovery_key not in (other_secret.discovery_key, other_group.discovery_key)
    assert secret.hex() not in repr(keys)
    assert keys.value_key.hex() not in repr(keys)


def test_sealed_values_open_only_in_their_group_and_label() -> None:
    keys = GroupKeys(KEY, new_group_secret())
    sealed = keys.seal_value(b"member list", b"members")
    assert b"member list" not in sealed
    assert keys.open_value(sealed, b"members") == b"member list"
    with pytest.raises(DecryptionError):
        keys.open_value(sealed, b"repos")  # a value cannot pose as another
    with pytest.raises(DecryptionError):
        GroupKeys(KEY, new_group_secret()).open_value(sealed, b"members")
    for i in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[i] ^= 1
        with pytest.raises(DecryptionError):
            keys.open_value(bytes(tampered), b"members")
    with pytest.raises(DecodeError):
        keys.open_value(sealed[:20], b"members")
    with pytest.raises(InvalidInput):
        keys.seal_value(bytes(MAX_VALUE_SIZE + 1), b"members")


def test_channel_macs_prove_the_secret_per_connection_and_role() -> None:
    keys = GroupKeys(KEY, new_group_secret())
    mac = keys.channel_mac(b"h" * 32, True)
    assert keys.check_channel_mac(b"h" * 32, True, mac)
    assert not keys.check_channel_mac(b"h" * 32, False, mac)  # not reflectable
    assert not keys.check_channel_mac(b"g" * 32, True, mac)  # not replayable on another connection
    assert not GroupKeys(KEY, new_group_secret()).check_channel_mac(b"h" * 32, True, mac)
