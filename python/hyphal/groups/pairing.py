"""Pairing a new device with a PAKE (sans-I/O): the messages of ``hyphal/pair/1`` and both sides.

A new device (the *joiner*) knows the account (the group id) and a pairing
secret: a short one-time code an authorised device shows, or the account's
password. It dials an authorised device (found in the DHT under the group's
pairing topic, §17.3) and the two run SPAKE2 over the connection:

1. ``HELLO`` (joiner): which secret it uses, its SPAKE2 message, its device name;
2. ``REPLY`` (device): the device's SPAKE2 message, or ``REFUSED`` when too
   many guesses came lately (the rate limit is per account, :class:`GuessLimit`);
3. ``CONFIRM`` (joiner): a MAC under the SPAKE2 key over the connection's
   handshake hash, proving it used the same secret;
4. ``WELCOME`` (device): the group's invite (key, secret, name, peers) sealed
   under a key derived from the SPAKE2 key and the handshake hash; or
   ``REFUSED`` for a wrong secret. Nothing else is revealed either way.

The SPAKE2 identities are the two devices' keys as the Noise handshake
authenticated them, and the keys bind the handshake hash, so the exchange
cannot be relayed to another connection. A passive eavesdropper sees only
SPAKE2 group elements: nothing against which to test guesses offline. An
active attacker gets one guess per run, and runs are limited per account.
Byte layouts in docs/PROTOCOL.md §17.3.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

import nacl.pwhash
import spake2  # type: ignore[import-untyped]
from typing_extensions import Buffer

from hyphal import aead
from hyphal.codec import Reader, Writer
from hyphal.errors import DecodeError, DecryptionError, InvalidInput, ProtocolError, Unauthorized
from hyphal.hashing import derive_key, keyed_hash

PROTOCOL = "hyphal/pair/1"
PAIR_VERSION = 1
SPAKE_MESSAGE_SIZE = 33
"""python-spake2's message: a side byte and an ed25519 group element."""
MAC_SIZE = 32
MAX_DEVICE_NAME = 64
MAX_INVITE = 4096
MAX_REASON = 200
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
"""Lowercase letters and digits without 0/o, 1/i/l: easy to read off one screen and type on another."""
CODE_LENGTH = 8
CODE_TTL = 600.0
CODE_GUESSES = 3
"""Wrong guesses a one-time code survives; then it is gone and a new one must be shown."""
GUESS_WINDOW = 600.0
GUESS_LIMIT = 10
"""Pairing runs an account takes per window before refusing more (online guessing)."""
PASSWORD_SALT_CONTEXT = "hyphal 2026-12 pairing password salt"
_CONFIRM_CONTEXT = "hyphal 2026-12 pairing confirm"
_SEAL_CONTEXT = "hyphal 2026-12 pairing seal"
_TOPIC_CONTEXT = "hyphal 2026-12 pairing topic"


def pairing_topic(group_key: bytes) -> bytes:
    """The DHT topic authorised devices announce under, and the pair channel's id: from the group
    key alone (the joiner knows nothing else), so it reveals where to pair, never the secret."""
    return derive_key(_TOPIC_CONTEXT, group_key)


def new_code() -> str:
    """A one-time code: 8 characters (about 40 bits), shown as ``xxxx-xxxx``."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def normalize_code(text: str) -> bytes:
    """A code as typed (any case, dashes or spaces) to the bytes both sides feed SPAKE2."""
    code = "".join(c for c in text.lower() if c not in "- ")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise InvalidInput(f"a pairing code is {CODE_LENGTH} letters and digits, like abcd-2345")
    return code.encode("ascii")


def harden_password(password: str, group_key: bytes) -> bytes:
    """The SPAKE2 input for an account password: Argon2id of it, salted by the group, so the
    authorised devices store a hardened hash rather than the password."""
    if not password:
        raise InvalidInput("a pairing password cannot be empty")
    salt = derive_key(PASSWORD_SALT_CONTEXT, group_key)[: nacl.pwhash.argon2id.SALTBYTES]
    hashed: bytes = nacl.pwhash.argon2id.kdf(
        32,
        password.encode("utf-8"),
        salt,
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )
    return hashed


# -- messages ----------------------------------------------------------------------------------


class PairMessage(IntEnum):
    HELLO = 1
    REPLY = 2
    CONFIRM = 3
    WELCOME = 4
    REFUSED = 5


class SecretKind(IntEnum):
    CODE = 1
    PASSWORD = 2


class RefusedWhy(IntEnum):
    WRONG_SECRET = 1
    RATE_LIMITED = 2
    NOT_OPEN = 3
    """No code shown and no password set for this account on that device."""


@dataclass(frozen=True, slots=True)
class Hello:
    kind: SecretKind
    spake: bytes
    name: str


@dataclass(frozen=True, slots=True)
class Reply:
    spake: bytes


@dataclass(frozen=True, slots=True)
class Confirm:
    mac: bytes


@dataclass(frozen=True, slots=True)
class Welcome:
    sealed: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    why: RefusedWhy
    text: str


PairingMessage: TypeAlias = Hello | Reply | Confirm | Welcome | Refused


def encode(message: PairingMessage) -> bytes:
    if isinstance(message, Hello):
        w = Writer().u8(PairMessage.HELLO, "kind").u8(PAIR_VERSION, "version").u8(message.kind, "secret kind")
        w.fixed(message.spake, SPAKE_MESSAGE_SIZE, "SPAKE2 message")
        return w.bytes8(message.name.encode("utf-8")[:MAX_DEVICE_NAME], MAX_DEVICE_NAME, "name").to_bytes()
    if isinstance(message, Reply):
        return bytes((PairMessage.REPLY,)) + message.spake
    if isinstance(message, Confirm):
        return bytes((PairMessage.CONFIRM,)) + message.mac
    if isinstance(message, Welcome):
        return bytes((PairMessage.WELCOME,)) + message.sealed
    text = message.text.encode("utf-8")[:MAX_REASON]
    return (
        Writer()
        .u8(PairMessage.REFUSED, "kind")
        .u8(message.why, "why")
        .bytes8(text, MAX_REASON, "text")
        .to_bytes()
    )


def decode(data: Buffer) -> PairingMessage:
    """One pair channel message; :class:`DecodeError` for anything malformed or unknown."""
    r = Reader(bytes(data), "pairing message")
    kind = r.u8("kind")
    try:
        if kind == PairMessage.HELLO:
            if r.u8("version") != PAIR_VERSION:
                raise DecodeError("pairing version not supported")
            secret_kind = SecretKind(r.u8("secret kind"))
            spake_message = r.take(SPAKE_MESSAGE_SIZE, "SPAKE2 message")
            message: PairingMessage = Hello(
                secret_kind, spake_message, r.bytes8(MAX_DEVICE_NAME, "name").decode("utf-8")
            )
        elif kind == PairMessage.REPLY:
            message = Reply(r.take(SPAKE_MESSAGE_SIZE, "SPAKE2 message"))
        elif kind == PairMessage.CONFIRM:
            message = Confirm(r.take(MAC_SIZE, "MAC"))
        elif kind == PairMessage.WELCOME:
            sealed = r.rest("sealed invite", aead.NONCE_SIZE + MAX_INVITE + aead.TAG_SIZE)
            if len(sealed) < aead.NONCE_SIZE + aead.TAG_SIZE:
                raise DecodeError("a sealed invite is too short")
            message = Welcome(sealed)
        elif kind == PairMessage.REFUSED:
            why = RefusedWhy(r.u8("why"))
            message = Refused(why, r.bytes8(MAX_REASON, "text").decode("utf-8", "replace"))
        else:
            raise DecodeError(f"unknown pairing message {kind}")
    except UnicodeDecodeError:
        raise DecodeError("a device name is UTF-8") from None
    except ValueError as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"bad pairing message: {exc}") from None
    r.expect_end()
    return message


# -- keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionKeys:
    confirm: bytes = field(repr=False)
    seal: bytes = field(repr=False)

    @classmethod
    def derive(cls, spake_key: bytes, handshake_hash: bytes) -> SessionKeys:
        material = spake_key + handshake_hash
        return cls(derive_key(_CONFIRM_CONTEXT, material), derive_key(_SEAL_CONTEXT, material))

    def confirm_mac(self, handshake_hash: bytes) -> bytes:
        return keyed_hash(self.confirm, b"joiner " + handshake_hash)

    def seal_invite(self, invite_uri: str, handshake_hash: bytes) -> bytes:
        nonce = secrets.token_bytes(aead.NONCE_SIZE)
        return nonce + aead.seal(self.seal, nonce, invite_uri.encode("utf-8"), b"welcome " + handshake_hash)

    def open_invite(self, sealed: bytes, handshake_hash: bytes) -> str:
        nonce, body = sealed[: aead.NONCE_SIZE], sealed[aead.NONCE_SIZE :]
        try:
            return aead.open(self.seal, nonce, body, b"welcome " + handshake_hash).decode("utf-8")
        except (DecryptionError, UnicodeDecodeError):
            raise DecryptionError("the welcome does not open: the device used another secret") from None


def _spake(side: type, secret: bytes, joiner: bytes, device: bytes) -> object:
    return side(secret, idA=b"hyphal pair joiner " + joiner, idB=b"hyphal pair device " + device)


def _finish(state: object, message: bytes) -> bytes:
    try:
        key: bytes = state.finish(message)  # type: ignore[attr-defined]
    except (spake2.spake2.SPAKEError, ValueError, AssertionError) as exc:
        raise ProtocolError(f"bad SPAKE2 message: {type(exc).__name__}") from None
    return key


# -- the rate limit ------------------------------------------------------------------------------


@dataclass(slots=True)
class GuessLimit:
    """Pairing runs one account takes: at most ``limit`` per ``window`` seconds, on each device."""

    limit: int = GUESS_LIMIT
    window: float = GUESS_WINDOW
    _runs: deque[float] = field(default_factory=deque)

    def take(self, now: float) -> bool:
        """Count a run starting at ``now``; ``False`` (and nothing counted) when over the limit."""
        while self._runs and self._runs[0] <= now - self.window:
            self._runs.popleft()
        if len(self._runs) >= self.limit:
            return False
        self._runs.append(now)
        return True


@dataclass(slots=True)
class OneTimeCode:
    code: bytes = field(repr=False)
    expires: float
    guesses_left: int = CODE_GUESSES


# -- the authorised device's side -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Paired:
    """The joiner proved the secret and was sent the invite: ``device`` (its key), ``name``."""

    device: bytes
    name: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The run ended without pairing; ``error`` says why (already sent to the joiner if it may know)."""

    error: Exception


class PairingResponder:
    """One pairing run on an authorised device. Feed it the joiner's messages; perform the actions.

    ``secrets_for(kind)`` gives the SPAKE2 input the device holds for that kind
    (the code or the hardened password), or ``None``; ``burn(kind, right)``
    tells the device's code store how the run went.
    """

    def __init__(
        self,
        device_key: bytes,
        joiner_key: bytes,
        handshake_hash: bytes,
        invite_uri: str,
        secret_for: dict[SecretKind, bytes],
        allowed: bool,
    ) -> None:
        self._device, self._joiner, self._hh = device_key, joiner_key, handshake_hash
        self._invite = invite_uri
        self._secret_for = secret_for
        self._allowed = allowed
        self._keys: SessionKeys | None = None
        self.hello: Hello | None = None
        self.done = False

    def receive(self, data: Buffer) -> list[Send | Paired | Failed]:
        if self.done:
            return []
        try:
            message = decode(data)
        except DecodeError as exc:
            return self._end(exc)
        if self.hello is None:
            if not isinstance(message, Hello):
                return self._end(ProtocolError("a pairing run starts with HELLO"))
            return self._on_hello(message)
        if self._keys is None or not isinstance(message, Confirm):
            return self._end(ProtocolError("CONFIRM expected"))
        if not hmac.compare_digest(message.mac, self._keys.confirm_mac(self._hh)):
            error = Unauthorized("wrong pairing code or password")
            return [Send(encode(Refused(RefusedWhy.WRONG_SECRET, str(error)))), *self._end(error)]
        self.done = True
        welcome = Welcome(self._keys.seal_invite(self._invite, self._hh))
        return [Send(encode(welcome)), Paired(self._joiner, self.hello.name)]

    def _on_hello(self, hello: Hello) -> list[Send | Paired | Failed]:
        self.hello = hello
        if not self._allowed:
            error = Unauthorized(
                "too many pairing attempts for this account lately; try again in a few minutes"
            )
            return [Send(encode(Refused(RefusedWhy.RATE_LIMITED, str(error)))), *self._end(error)]
        secret = self._secret_for.get(hello.kind)
        if secret is None:
            what = "no pairing code is shown" if hello.kind == SecretKind.CODE else "no password is set"
            error = Unauthorized(f"{what} for this account on that device")
            return [Send(encode(Refused(RefusedWhy.NOT_OPEN, str(error)))), *self._end(error)]
        state = _spake(spake2.SPAKE2_B, secret, self._joiner, self._device)
        outbound: bytes = state.start()  # type: ignore[attr-defined]
        try:
            key = _finish(state, hello.spake)
        except ProtocolError as exc:
            return self._end(exc)
        self._keys = SessionKeys.derive(key, self._hh)
        return [Send(encode(Reply(outbound)))]

    def _end(self, error: Exception) -> list[Send | Paired | Failed]:
        self.done = True
        return [Failed(error)]


# -- the joiner's side ----------------------------------------------------------------------------


class PairingInitiator:
    """The new device's side of one run: :meth:`start`, then :meth:`receive` the device's messages
    until it returns the invite URI (``str``)."""

    def __init__(
        self,
        kind: SecretKind,
        secret: bytes,
        name: str,
        joiner_key: bytes,
        device_key: bytes,
        handshake_hash: bytes,
    ) -> None:
        self._kind, self._name, self._hh = kind, name, handshake_hash
        self._state = _spake(spake2.SPAKE2_A, secret, joiner_key, device_key)
        self._keys: SessionKeys | None = None

    def start(self) -> bytes:
        outbound: bytes = self._state.start()  # type: ignore[attr-defined]
        return encode(Hello(self._kind, outbound, self._name[:MAX_DEVICE_NAME]))

    def receive(self, data: Buffer) -> bytes | str:
        """The next message to send (``bytes``), or the invite URI (``str``) when paired.

        Raises :class:`Unauthorized` (wrong secret, rate limited, nothing open),
        :class:`DecodeError` or :class:`ProtocolError`."""
        message = decode(data)
        if isinstance(message, Refused):
            raise Unauthorized(f"the device refused: {message.text}")
        if self._keys is None:
            if not isinstance(message, Reply):
                raise ProtocolError("REPLY expected")
            self._keys = SessionKeys.derive(_finish(self._state, message.spake), self._hh)
            return encode(Confirm(self._keys.confirm_mac(self._hh)))
        if not isinstance(message, Welcome):
            raise ProtocolError("WELCOME expected")
        try:
            return self._keys.open_invite(message.sealed, self._hh)
        except DecryptionError:
            raise Unauthorized("wrong pairing code or password") from None


__all__ = [
    "CODE_TTL",
    "PROTOCOL",
    "Failed",
    "GuessLimit",
    "OneTimeCode",
    "Paired",
    "PairingInitiator",
    "PairingMessage",
    "PairingResponder",
    "SecretKind",
    "Send",
    "SessionKeys",
    "decode",
    "encode",
    "harden_password",
    "new_code",
    "normalize_code",
    "pairing_topic",
]
