"""Pairing on a running node: codes and passwords held, the ``hyphal/pair/1`` channel, sign-in.

On an authorised device, :meth:`PairingService.make_code` starts the group's
membership log if need be (so devices that pair are read-only until
approved), keeps a one-time code for :data:`~hyphal.groups.pairing.CODE_TTL`
seconds and announces the device in the DHT under the group's pairing topic.
:meth:`PairingService.handle` runs :class:`~hyphal.groups.pairing.PairingResponder`
on each pair channel a peer opens, under the account's guess limit.

On a new device, :meth:`PairingService.join` resolves the account (the
group id) to authorised devices through that DHT topic (or an address it is
given), runs :class:`~hyphal.groups.pairing.PairingInitiator` with one of
them, and joins the group with the invite that comes back: read-only
until an authorised device approves it (§17.4). Byte layouts: docs/PROTOCOL.md §17.3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from hyphal.dht.udp import UdpDht
from hyphal.errors import DecodeError, HyphalError, InvalidInput, NotAvailable, ProtocolError, Unauthorized
from hyphal.groups.group import Group
from hyphal.groups.invite import KEY_SIZE, unb32
from hyphal.groups.manager import GroupManager
from hyphal.groups.pairing import (
    CODE_TTL,
    PROTOCOL,
    Failed,
    GuessLimit,
    OneTimeCode,
    Paired,
    PairingInitiator,
    PairingResponder,
    SecretKind,
    Send,
    harden_password,
    new_code,
    normalize_code,
    pairing_topic,
)
from hyphal.net.address import format_address, parse_address
from hyphal.net.channel import Channel
from hyphal.net.connection import ChannelRequest, Connection
from hyphal.notifier import Notifier
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.pairing")

PAIR_TIMEOUT = 20.0
DHT_TIMEOUT = 20.0


class PairingHost(Protocol):
    @property
    def keypair(self) -> KeyPair: ...

    @property
    def dht(self) -> UdpDht: ...

    @property
    def group_manager(self) -> GroupManager: ...

    def advertised_addresses(self) -> list[str]: ...

    async def dial(self, address: str, expected_remote: bytes | None = None) -> Connection: ...


@dataclass(slots=True)
class _Account:
    """What this device holds to pair devices into one group."""

    limit: GuessLimit = field(default_factory=GuessLimit)
    codes: list[OneTimeCode] = field(default_factory=list)


class PairingService:
    """Every group's pairing on one node."""

    def __init__(self, host: PairingHost) -> None:
        self._host = host
        self._accounts: dict[bytes, _Account] = {}
        self.paired: Notifier[tuple[Group, Paired]] = Notifier()
        """A device proved the secret here and was sent the group's invite."""
        self.failures: Notifier[tuple[bytes, Exception]] = Notifier()
        """A pairing run here failed: (group key, why)."""

    def _account(self, group: Group) -> _Account:
        return self._accounts.setdefault(group.keys.group_key, _Account())

    # -- the authorised device ---------------------------------------------------------------

    async def make_code(self, group: Group) -> str:
        """A one-time code for ``group``, valid :data:`CODE_TTL` seconds (replacing any code shown
        before), and this device announced where new devices look. Only a writer (the origin
        starts the log) can show one."""
        self._require_authorised(group)
        code = new_code()
        account = self._account(group)
        # One live code per account here: a run can test only one, and the newest is on screen.
        account.codes = [OneTimeCode(normalize_code(code), anyio.current_time() + CODE_TTL)]
        await self.announce(group)
        log.info("group %s: pairing code shown (valid %d s)", group.id, int(CODE_TTL))
        return code

    def set_password(self, group: Group, password: str) -> None:
        """The account's password: kept here as its Argon2id hash (in the sealed groups file)."""
        self._require_authorised(group)
        group.record.pair_password = harden_password(password, group.keys.group_key)
        group.save()

    def _require_authorised(self, group: Group) -> None:
        if group.is_backup:
            raise InvalidInput("a backup server cannot pair devices into a group")
        group.start_log()
        if not group.can_write:
            raise Unauthorized("only an authorised device of the group can pair new devices")

    async def announce(self, group: Group) -> None:
        """Announce this device under the group's pairing topic (best effort)."""
        addresses = [parse_address(a) for a in self._host.advertised_addresses()]
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                await self._host.dht.announce(
                    self._host.keypair, pairing_topic(group.keys.group_key), addresses
                )
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: pairing announce did not complete: %s", group.id, exc)

    async def handle(self, request: ChannelRequest) -> bool:
        """A peer opened a pair channel: run the responder if we hold that account."""
        group = next(
            (
                g
                for g in self._host.group_manager.list()
                if pairing_topic(g.keys.group_key) == request.id and not g.is_backup and not g.record.left
            ),
            None,
        )
        if group is None or not group.can_write:
            return False
        channel = await request.accept()
        connection = request.connection
        account = self._account(group)
        now = anyio.current_time()
        account.codes = [c for c in account.codes if c.expires > now and c.guesses_left > 0]
        secrets: dict[SecretKind, bytes] = {}
        if account.codes:
            secrets[SecretKind.CODE] = account.codes[-1].code
        if group.record.pair_password is not None:
            secrets[SecretKind.PASSWORD] = group.record.pair_password
        responder = PairingResponder(
            self._host.keypair.public_key,
            connection.remote_public_key,
            connection.handshake_hash,
            group.invite().to_uri(),
            secrets,
            allowed=account.limit.take(now),
        )
        async with channel:
            try:
                with anyio.fail_after(PAIR_TIMEOUT):
                    while not responder.done:
                        data = await channel.receive()
                        for action in responder.receive(data):
                            await self._perform(group, account, responder, action, channel)
                    await channel.wait_open()
            except (TimeoutError, anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                if not responder.done:
                    log.info("group %s: a pairing run from %s ended early", group.id, connection)
        return True

    async def _perform(
        self,
        group: Group,
        account: _Account,
        responder: PairingResponder,
        action: Send | Paired | Failed,
        channel: Channel,
    ) -> None:
        if isinstance(action, Send):
            await channel.send(action.data)
        elif isinstance(action, Paired):
            if responder.hello is not None and responder.hello.kind == SecretKind.CODE and account.codes:
                account.codes.pop()  # one time
            log.info(
                "group %s: paired device %s (%s), read-only until approved",
                group.id,
                action.device.hex()[:16],
                action.name,
            )
            self.paired.notify((group, action))
        else:
            if (
                responder.hello is not None
                and responder.hello.kind == SecretKind.CODE
                and account.codes
                and isinstance(action.error, Unauthorized)
            ):
                account.codes[-1].guesses_left -= 1
            log.warning(
                "group %s: pairing refused: %s: %s", group.id, type(action.error).__name__, action.error
            )
            self.failures.notify((group.keys.group_key, action.error))

    # -- the new device ----------------------------------------------------------------------

    async def join(
        self,
        account: str,
        secret: str,
        *,
        password: bool = False,
        name: str | None = None,
        peers: list[str] | None = None,
        timeout: float = PAIR_TIMEOUT,
    ) -> Group:
        """Sign in to ``account`` (a group id) with a one-time code (or, ``password``, the account's
        password): pair with an authorised device and join the group read-only.

        :class:`Unauthorized` for a wrong code or password (nothing is kept),
        :class:`NotAvailable` when no authorised device answers."""
        group_key = unb32(account.strip().lower(), KEY_SIZE, "the account (a group id)")
        kind = SecretKind.PASSWORD if password else SecretKind.CODE
        spake_input = harden_password(secret, group_key) if password else normalize_code(secret)
        manager = self._host.group_manager
        device_name = name or manager.member_name
        candidates = list(peers or []) or await self._find(group_key)
        if not candidates:
            raise NotAvailable(
                "no authorised device of that account is announced in the DHT; show a code on one "
                "(`hyphal pair code`) and keep it running, or give its address with --peer"
            )
        errors: list[str] = []
        for address in candidates:
            try:
                with anyio.fail_after(timeout):
                    uri = await self._run(address, group_key, kind, spake_input, device_name)
            except Unauthorized:
                log.warning("pairing with %s: refused (wrong code or password, or rate limited)", address)
                raise
            except (TimeoutError, HyphalError, OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                errors.append(f"{address}: {exc or type(exc).__name__}")
                continue
            group = await manager.join(uri, device_name, timeout)
            log.info("paired into group %s (%s), read-only until approved", group.name, group.id)
            return group
        raise NotAvailable(f"no authorised device answered: {'; '.join(errors)}")

    async def _find(self, group_key: bytes) -> list[str]:
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                found = await self._host.dht.lookup(pairing_topic(group_key))
        except (TimeoutError, HyphalError) as exc:
            log.info("pairing: DHT lookup did not complete: %s", exc)
            return []
        own = self._host.keypair.public_key
        return [format_address(a) for ann in found.announces if ann.public_key != own for a in ann.addresses]

    async def _run(self, address: str, group_key: bytes, kind: SecretKind, secret: bytes, name: str) -> str:
        connection = await self._host.dial(address)
        initiator = PairingInitiator(
            kind,
            secret,
            name,
            self._host.keypair.public_key,
            connection.remote_public_key,
            connection.handshake_hash,
        )
        channel = await connection.open_channel(PROTOCOL, pairing_topic(group_key))
        async with channel:
            await channel.send(initiator.start())
            while True:
                try:
                    data = await channel.receive()
                except anyio.EndOfStream:
                    raise ProtocolError(
                        f"the device closed the pairing channel: {channel.close_reason or 'declined'}"
                    ) from None
                try:
                    out = initiator.receive(data)
                except DecodeError as exc:
                    raise ProtocolError(f"bad pairing message: {exc}") from None
                if isinstance(out, str):
                    return out
                await channel.send(out)


__all__ = ["PairingHost", "PairingService"]
