"""BLAKE3 hashing: plain (content ids), keyed, key derivation and incremental."""

from __future__ import annotations

from hyphal._core.hash import Hasher, blake3, derive_key, keyed_hash

__all__ = ["Hasher", "blake3", "derive_key", "keyed_hash"]
