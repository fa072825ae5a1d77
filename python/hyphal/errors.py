"""The one error hierarchy of hyphal.

Everything hyphal raises on purpose derives from :class:`HyphalError`. Bad
arguments are also ``ValueError``s, so callers that only know the standard
library still catch them. The Rust core raises these same classes.
"""

from __future__ import annotations


class HyphalError(Exception):
    """Base of every error hyphal raises on purpose."""


class InvalidInput(HyphalError, ValueError):
    """An argument is out of range or of the wrong length."""


class InvalidAddress(InvalidInput):
    """A network address is not ``host:port`` or ``[IPv6]:port`` with a port in range."""


class DecodeError(HyphalError, ValueError):
    """Bytes from a peer, a file or a user do not parse as the expected format."""


class SchemaTooNew(DecodeError):
    """A database file was written by a newer hyphal: its schema version is above the one this code knows.

    Nothing in the file was changed; open it with the newer version.
    """

    def __init__(self, path: str, found: int, supported: int, what: str = "database") -> None:
        super().__init__(
            f"{path}: this {what} has schema version {found}, newer than version {supported}, "
            "the newest this hyphal knows; open it with a newer hyphal"
        )
        self.path = path
        self.found = found
        self.supported = supported
        self.what = what

    def __reduce__(self) -> tuple[type[SchemaTooNew], tuple[str, int, int, str]]:
        return type(self), (self.path, self.found, self.supported, self.what)


class VerificationError(HyphalError):
    """Data failed a cryptographic check; nothing derived from it may be stored."""


class ProofError(VerificationError):
    """A Merkle proof does not lead to the trusted tree hash."""


class SignatureError(VerificationError):
    """A signature does not verify under the expected key."""


class DecryptionError(VerificationError):
    """An AEAD ciphertext or its associated data was altered, or the key is wrong."""


class WrongPassphrase(DecryptionError):
    """A passphrase does not open what it should (an identity file, say)."""


class HandshakeError(VerificationError):
    """A connection handshake failed: bad message, wrong order, or an identity that does not verify."""


class ProtocolError(HyphalError):
    """A peer broke the wire protocol: bad framing, unknown message, a message out of order."""


class NotAvailable(HyphalError, LookupError):
    """A block, node or value this replica does not hold (yet)."""


class Unauthorized(HyphalError, PermissionError):
    """The requester's key may not do this (not the owner, not on the ACL), or the request was replayed."""


class ReadOnlyDevice(Unauthorized):
    """This device holds a group read-only: paired and not approved yet, or removed (§17.1).

    Nothing was written. An authorised device approves it with ``hyphal pair approve``.
    """


class RateLimited(HyphalError):
    """Too many requests from one sender (a device's messages, say): refused until its budget refills."""


class SeqConflict(HyphalError):
    """A compare-and-swap lost: the stored sequence number is not the one expected."""


class MissingExtra(HyphalError, ImportError):
    """A feature needs an optional dependency group that is not installed (``pip install 'hyphal[http]'``)."""

    def __init__(self, extra: str, feature: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {module!r}, which is not installed; "
            f"install it with: pip install 'hyphal[{extra}]'"
        )
        self.extra = extra
        self.feature = feature
        self.module = module

    def __reduce__(self) -> tuple[type[MissingExtra], tuple[str, str, str]]:
        return type(self), (self.extra, self.feature, self.module)


__all__ = [
    "DecodeError",
    "DecryptionError",
    "HandshakeError",
    "HyphalError",
    "InvalidAddress",
    "InvalidInput",
    "MissingExtra",
    "NotAvailable",
    "ProofError",
    "ProtocolError",
    "RateLimited",
    "ReadOnlyDevice",
    "SchemaTooNew",
    "SeqConflict",
    "SignatureError",
    "Unauthorized",
    "VerificationError",
    "WrongPassphrase",
]
