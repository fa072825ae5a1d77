"""Feed share strings: ``hyphal://feed/<feed key hex>[?r=<read secret hex>]``.

A share string is what one person hands another so they can read a feed:
the feed key (which readers need to verify every head, and which is the
capability to fetch the manifest), and for a private feed the read secret
that opens its blocks. Neither ever goes on the DHT: peers find each other
there by the feed's *discovery key*, a hash of the feed key. The key is hex,
as ``hyphal feed list`` and ``feed info`` show it, so a share can be matched
by eye against a listing. A bare 64-hex feed key is accepted wherever a share
is. The read secret never shows in ``repr``, ``str``, logs or error messages:
errors describe what is wrong without quoting the text. Layout in
docs/PROTOCOL.md §10.8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from hyphal.errors import InvalidInput
from hyphal.feed.encryption import READ_SECRET_SIZE
from hyphal.feed.manifest import discovery_key

SCHEME = "hyphal"
KIND = "feed"
KEY_SIZE = 32
MAX_SHARE_LEN = 512
PRIVATE_LABEL = b"hyphal private feed"
"""The manifest label of a feed made by ``hyphal feed create --encrypted``: the manifest hashes to
the key, so a reader that fetched it knows the feed is private and refuses to show ciphertext."""
HINT = "a feed share is hyphal://feed/<64 hex>[?r=<64 hex>] or a 64-hex feed key (see `hyphal feed list`)"


def _hex(text: str, size: int, what: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != size or len(text) != 2 * size:
        raise InvalidInput(f"{what} is not {size} bytes of hex; {HINT}")
    return value


@dataclass(frozen=True, slots=True)
class FeedShare:
    """A feed key and, for a private feed, its read secret."""

    key: bytes
    read_secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_SIZE:
            raise InvalidInput(f"a feed key is {KEY_SIZE} bytes")
        if self.read_secret is not None and len(self.read_secret) != READ_SECRET_SIZE:
            raise InvalidInput(f"a feed read secret is {READ_SECRET_SIZE} bytes")

    @property
    def discovery_key(self) -> bytes:
        """What peers announce and look up on the DHT: a hash, so the DHT never learns the key."""
        return discovery_key(self.key)

    def to_uri(self) -> str:
        """The full share, read secret included: hand it only to whoever should read the feed."""
        query = f"?r={self.read_secret.hex()}" if self.read_secret is not None else ""
        return f"{SCHEME}://{KIND}/{self.key.hex()}{query}"

    def __str__(self) -> str:
        return f"{SCHEME}://{KIND}/{self.key.hex()}{'?r=<secret>' if self.read_secret else ''}"

    @classmethod
    def parse(cls, text: str) -> FeedShare:
        """A share string or a bare hex feed key; :class:`InvalidInput` says what is wrong, not the text."""
        if not isinstance(text, str) or len(text) > MAX_SHARE_LEN:
            raise InvalidInput(f"a feed share is at most {MAX_SHARE_LEN} characters; {HINT}")
        text = text.strip()
        if "://" not in text:
            return cls(_hex(text, KEY_SIZE, "the feed key"))
        try:
            parts = urlsplit(text)
        except ValueError:
            raise InvalidInput(f"the feed share is not a valid URI; {HINT}") from None
        if parts.scheme != SCHEME or parts.netloc != KIND:
            raise InvalidInput(f"a feed share starts with {SCHEME}://{KIND}/; {HINT}")
        key = _hex(parts.path.removeprefix("/"), KEY_SIZE, "the share's feed key")
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise InvalidInput(f"the feed share's parameters are malformed; {HINT}") from None
        unknown = sorted(set(query) - {"r"})
        if unknown:
            raise InvalidInput(f"the feed share has an unknown parameter {unknown[0][:16]!r}; {HINT}")
        secrets = query.get("r", [])
        if len(secrets) > 1:
            raise InvalidInput("the feed share carries more than one read secret (r=)")
        secret = _hex(secrets[0], READ_SECRET_SIZE, "the share's read secret (r=)") if secrets else None
        return cls(key, secret)


__all__ = ["HINT", "PRIVATE_LABEL", "FeedShare"]
