"""``hyphal._core.sign``: ed25519 signing keys, verification and batch verification."""

from collections.abc import Sequence
from typing import final

from typing_extensions import Buffer

@final
class SigningKey:
    def __init__(self, seed: Buffer) -> None: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def seed(self) -> bytes: ...
    def sign(self, message: Buffer) -> bytes: ...

def verify(public_key: Buffer, message: Buffer, signature: Buffer) -> bool: ...
def verify_batch(
    public_keys: Sequence[Buffer], messages: Sequence[Buffer], signatures: Sequence[Buffer]
) -> bool: ...

__all__ = [
    "SigningKey",
    "verify",
    "verify_batch",
]
