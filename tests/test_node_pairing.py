"""Pairing, read-only devices, approval and removal on real nodes over TCP and UDP on 127.0.0.14x.

An origin shows a code; a second device signs in with it (through the DHT or a given
address), replicates the group read-only, is refused its own writes locally, and every
peer refuses them when forced onto the wire; its request travels the message channel;
the origin (or any authorised device) approves it and every member then accepts its
writes; a removal makes peers refuse its later writes while its old ones stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from hyphal.errors import InvalidInput, ReadOnlyDevice, Unauthorized
from hyphal.groups.events import DeviceApproved, PairingRequested
from hyphal.groups.group import Group
from hyphal.groups.membership import Entry, EntryKind
from hyphal.groups.pairing_requests import verification_code
from hyphal.node import Node

pytestmark = pytest.mark.anyio
WAIT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(condition: Callable[[], bool], *groups: Group) -> None:
    """Wait (on the groups' changes, with a timeout) until ``condition`` holds."""
    with anyio.fail_after(WAIT):
        while not condition():
            with anyio.move_on_after(0.5):
                async with anyio.create_task_group() as tg:

                    async def wake(wait: Callable[[], object]) -> None:
                        await wait()  # type: ignore[misc]
                        tg.cancel_scope.cancel()

                    for group in groups:
                        tg.start_soon(wake, group.replication.changes.wait)
                        tg.start_soon(wake, group.replication.entries.wait)
                        for repo in [group.own_repo, *group.repos.values()]:
                            if repo is not None:
                                tg.start_soon(wake, repo.applied.wait)


def address(node: Node) -> str:
    return "{}:{}".format(*node.address)


def names(group: Group) -> set[str]:
    return {f.name for f in group.files()}


async def test_pair_read_only_forced_write_request_approve_remove(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with Node(tmp_path / "o", listen="127.0.0.141:0", name="origin") as o:
        go = await o.create_group("family")
        go.add_bytes("from-origin.txt", b"origin's")
        assert not go.log.state.active  # an open group until the origin first pairs

        async with Node(tmp_path / "s", listen="127.0.0.142:0", name="second", bootstrap=[address(o)]) as s:
            code = await o.pairing.make_code(go)  # announced in the DHT, where S looks
            assert go.log.state.origin == o.public_key
            # A wrong code: a typed error, a log line on both sides, nothing kept.
            with pytest.raises(Unauthorized, match="wrong pairing code"):
                await s.pairing.join(go.id, "zzzz-zzzz", name="Firefox on Ubuntu 64-bit", peers=[address(o)])
            assert s.groups() == []
            assert "pairing refused: Unauthorized" in caplog.text
            # The code survives a wrong guess (up to three); the right one pairs through the DHT.
            gs = await s.pairing.join(go.id, code.upper(), name="Firefox on Ubuntu 64-bit")
            assert gs.keys.group_key == go.keys.group_key
            await until(lambda: gs.log.state.active and "from-origin.txt" in names(gs), gs)
            assert not gs.can_write
            with pytest.raises(ReadOnlyDevice, match="read-only"):
                gs.add_bytes("nope.txt", b"refused here")
            # A one-time code is gone once used.
            with pytest.raises(Unauthorized):
                await s.pairing.join(go.id, code, peers=[address(o)])

            # Forced onto the wire: the origin does not follow, store or list it.
            assert gs.own_repo is not None
            gs.own_repo.put("forced.txt", bytes(32), 0)
            await until(lambda: gs.device_key in {m.key for m in go.members()}, go)
            assert "forced.txt" not in names(go)
            assert gs.device_key not in go.repos
            assert "not following read-only device" in caplog.text

            # The request goes over the message channel; both screens show one code.
            request, shown = gs.request_approval()
            assert shown == verification_code(go.keys.group_key, s.public_key)
            await until(lambda: bool(go.pairing_requests()), go)
            [pending] = go.pairing_requests()
            assert (pending.id, pending.code, pending.name) == (request, shown, "Firefox on Ubuntu 64-bit")
            go.approve_request(request)
            await until(lambda: gs.can_write, gs)
            gs.add_bytes("from-second.txt", b"second's")
            await until(lambda: "from-second.txt" in names(go), go)
            assert go.log.state.writers[s.public_key].approved_by == o.public_key

            # Removal: the old writes stay, later ones (forced too) are refused everywhere.
            go.remove_device(s.public_key)
            await until(lambda: not gs.can_write, gs)
            with pytest.raises(ReadOnlyDevice, match="removed"):
                gs.add_bytes("after.txt", b"refused")
            gs.own_repo.put("forced-after.txt", bytes(32), 0)
            await until(lambda: go.repos[s.public_key].feed.length == gs.own_repo.feed.length, go)  # type: ignore[union-attr]
            assert "from-second.txt" in names(go)
            assert "forced-after.txt" not in names(go)
            assert "refused blocks" in caplog.text
            # A removed device approves nothing: its entry is refused by the log's rule.
            with pytest.raises(Unauthorized):
                gs.approve_device(bytes(32), "x")


async def test_any_authorised_device_approves_and_bad_requests_change_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        Node(tmp_path / "o", listen="127.0.0.143:0", name="origin") as o,
        Node(tmp_path / "t", listen="127.0.0.144:0", name="third") as t,
        Node(tmp_path / "s", listen="127.0.0.145:0", name="second") as s,
    ):
        go = await o.create_group("g")
        gt = await t.pairing.join(go.id, await o.pairing.make_code(go), name="phone", peers=[address(o)])
        events: list[object] = []

        async def watch() -> None:
            async for event in gt.watch():
                events.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            request, _ = gt.request_approval()
            await until(lambda: bool(go.pairing_requests()), go)
            go.approve_request(request)
            await until(lambda: gt.can_write, gt)
            assert any(isinstance(e, DeviceApproved) and e.device == t.public_key for e in events)

            # The third device (approved) shows a code and approves the second.
            code = await t.pairing.make_code(gt)
            gs = await s.pairing.join(go.id, code, name="laptop", peers=[address(t)])
            request, shown = gs.request_approval()
            await until(lambda: any(isinstance(e, PairingRequested) for e in events), gt)
            asked = next(e for e in events if isinstance(e, PairingRequested))
            assert (asked.request, asked.code) == (request, shown)
            gt.approve_request(request)
            await until(lambda: gs.can_write, gs)
            gs.add_bytes("second.txt", b"hello")
            await until(lambda: "second.txt" in names(go), go)
            assert go.log.state.writers[s.public_key].approved_by == t.public_key

            with pytest.raises(InvalidInput, match="no pending pairing request"):
                gt.deny_request("nothing-pending")
            tg.cancel_scope.cancel()


async def test_a_request_and_its_approval_travel_through_the_always_on_node_only(tmp_path: Path) -> None:
    """The new device and the origin never reach each other after pairing (their advertised
    addresses lead nowhere): the request goes through the backup server, which cannot read it,
    and so do the approval and the new device's first file."""
    nowhere = ["127.0.0.99:9"]
    async with (
        Node(tmp_path / "b", listen="127.0.0.152:0", name="backup", backup_for=[]) as b,
        Node(tmp_path / "o", listen="127.0.0.153:0", name="origin", advertise=nowhere) as o,
        Node(tmp_path / "s", listen="127.0.0.154:0", name="second", advertise=nowhere) as s,
    ):
        b.group_manager.backup_for = frozenset([o.public_key])
        go = await o.create_group("g")
        await o.add_backup(go.id, address(b))
        gs = await s.pairing.join(go.id, await o.pairing.make_code(go), name="tablet", peers=[address(o)])
        await until(lambda: any(m.advert.backup for m in gs.members()), gs)
        await until(lambda: len(gs.replication.member_connections()) == 2, gs)  # the origin, the backup
        direct = s.pool.get(o.public_key)
        assert direct is not None
        await direct.aclose("the devices lose sight of each other")
        await until(
            lambda: gs.replication.member_connections() != [] and s.pool.get(o.public_key) is None, gs
        )

        request, _ = gs.request_approval()
        await until(lambda: bool(go.pairing_requests()), go)
        assert s.pool.get(o.public_key) is None
        assert o.pool.get(s.public_key) is None
        gb = b.group(go.id)
        assert gb.pairing_requests() == []  # the relay holds no key to read it
        go.approve_request(request)
        await until(lambda: gs.can_write, gs)
        gs.add_bytes("via-backup.txt", b"relayed")
        await until(lambda: "via-backup.txt" in names(go), go)
        assert s.pool.get(o.public_key) is None


async def test_password_sign_in_and_online_guessing_is_rate_limited_per_account(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        Node(tmp_path / "o", listen="127.0.0.155:0", name="origin") as o,
        Node(tmp_path / "s", listen="127.0.0.156:0", name="second") as s,
    ):
        go = await o.create_group("g")
        o.pairing.set_password(go, "correct horse battery staple")
        # The groups file keeps a hash, not the password.
        assert b"correct horse" not in (tmp_path / "o" / "groups").read_bytes()
        with pytest.raises(Unauthorized, match="wrong pairing code or password"):
            await s.pairing.join(go.id, "Tr0ub4dor&3", password=True, peers=[address(o)])
        gs = await s.pairing.join(go.id, "correct horse battery staple", password=True, peers=[address(o)])
        assert not gs.can_write
        assert s.groups() == [gs]

    async with (
        Node(tmp_path / "o2", listen="127.0.0.157:0", name="origin") as o,
        Node(tmp_path / "g", listen="127.0.0.158:0", name="guesser") as g,
    ):
        go = await o.create_group("h")
        await o.pairing.make_code(go)
        refusals = []
        for guess in range(11):
            with pytest.raises(Unauthorized) as refused:
                await g.pairing.join(
                    go.id, f"abcd-{guess + 2:04d}".replace("0", "2").replace("1", "3"), peers=[address(o)]
                )
            refusals.append(str(refused.value))
        assert "wrong pairing code" in refusals[0]
        assert "no pairing code is shown" in refusals[3]  # three wrong guesses ended the code
        assert "too many pairing attempts" in refusals[10]  # ten runs per account per ten minutes
        assert "pairing refused: Unauthorized" in caplog.text
        assert g.groups() == []
        # Nothing joined, and the node still answers.
        assert await o.pairing.make_code(go)


async def test_a_forged_approval_on_the_wire_is_refused_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        Node(tmp_path / "o", listen="127.0.0.159:0", name="origin") as o,
        Node(tmp_path / "s", listen="127.0.0.160:0", name="second") as s,
    ):
        go = await o.create_group("g")
        gs = await s.pairing.join(go.id, await o.pairing.make_code(go), peers=[address(o)])
        assert not gs.can_write
        before = dict(go.log.entries)
        # The read-only device approves itself and pushes the entry onto the wire, around its own log.
        heads = gs.log.heads()
        forged = Entry.sign(s.keypair, EntryKind.APPROVE, go.keys.group_key, heads, device=s.public_key)
        dropped = anyio.Event()
        go.replication.drops.subscribe(lambda _: dropped.set())
        gs.replication.publish_entry(forged)
        with anyio.fail_after(WAIT):
            await dropped.wait()
        key, reason = go.replication.dropped[-1]
        assert key == s.public_key
        assert "Unauthorized" in reason
        assert "no earlier entry made a writer" in caplog.text
        assert go.log.entries == before
        assert not go.log.state.is_writer(s.public_key)
        go.add_bytes("still.txt", b"the origin goes on")  # and still answers
        assert "still.txt" in names(go)
