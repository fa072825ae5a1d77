"""The secrets this node owns, remembered in its data dir: :class:`OwnedSecrets`.

The network stores a secret under ``H(owner ‖ H(url))`` and holders never
see its URL, so only the owner can list its secrets by URL. The list (URL,
version, readers, size; never the value) is one file, sealed with
XChaCha20-Poly1305 under a key derived from the node's identity seed, so
the data dir shows no URL to whoever reads it without the identity. It is
rewritten atomically on every change.
"""

from __future__ import annotations

import json
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from hyphal import aead
from hyphal.errors import DecodeError, DecryptionError
from hyphal.files import write_atomically
from hyphal.hashing import derive_key
from hyphal.signing import KeyPair

OWNED_CONTEXT = "hyphal 2026-11 owned secrets list"
_NONCE_SIZE = 24
_VERSION = 1


@dataclass(frozen=True, slots=True)
class OwnedSecret:
    """What the owner remembers of one of its secrets."""

    url: str
    version: int
    readers: tuple[bytes, ...]
    size: int


class OwnedSecrets:
    """The sealed list at ``path``, opened with ``keypair``'s seed. See the module docstring."""

    def __init__(self, path: Path, keypair: KeyPair) -> None:
        self.path = path
        self._key = derive_key(OWNED_CONTEXT, keypair.seed)
        self._entries: dict[str, OwnedSecret] = self._load()

    def _load(self) -> dict[str, OwnedSecret]:
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            plain = aead.open(self._key, sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], self._ad())
            raw = json.loads(plain)
            return {
                e["url"]: OwnedSecret(
                    e["url"], int(e["version"]), tuple(bytes.fromhex(r) for r in e["readers"]), int(e["size"])
                )
                for e in raw["secrets"]
            }
        except DecryptionError:
            raise DecryptionError(f"{self.path} does not open with this identity") from None
        except (ValueError, KeyError, TypeError) as e:
            raise DecodeError(f"{self.path} is damaged: {e}") from None

    def _ad(self) -> bytes:
        return f"{OWNED_CONTEXT} v{_VERSION}".encode()

    def _save(self) -> None:
        entries = [
            {"url": e.url, "version": e.version, "readers": [r.hex() for r in e.readers], "size": e.size}
            for e in self.list()
        ]
        plain = json.dumps({"secrets": entries}, sort_keys=True).encode()
        nonce = _random.token_bytes(_NONCE_SIZE)
        write_atomically(self.path, nonce + aead.seal(self._key, nonce, plain, self._ad()))

    def get(self, url: str) -> OwnedSecret | None:
        return self._entries.get(url)

    def set(self, entry: OwnedSecret) -> None:
        self._entries[entry.url] = entry
        self._save()

    def remove(self, url: str) -> None:
        if self._entries.pop(url, None) is not None:
            self._save()

    def list(self) -> list[OwnedSecret]:
        return [self._entries[url] for url in sorted(self._entries)]


__all__ = ["OWNED_CONTEXT", "OwnedSecret", "OwnedSecrets"]
