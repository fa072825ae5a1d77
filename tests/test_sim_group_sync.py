"""``Group.sync_all`` lists the files it could not fetch in ``missing``; nothing escapes it.

Two escapes the whole-system simulation found (tests/test_sim_system.py),
each pinned here on two real nodes in the simulator: a blob download that
times out, and a provider connection that is closing (replaced by a
duplicate) when the download opens its channel. Both once left ``sync_all``
as an ExceptionGroup of the downloader's task group.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest

from hyphal.errors import NotAvailable
from hyphal.groups.events import SyncProgress
from hyphal.groups.group import Group
from hyphal.net.connection import Connection
from hyphal.sim.clock import run
from hyphal.sim.system import PORT, SystemSimulator, node_ip

SIZE = 200_000


async def _owner_and_member(sim: SystemSimulator) -> tuple[Group, Group]:
    """Node 1 creates a group and adds a file; node 2 joins and knows of the file, without its blob."""
    first, second = node_ip(1), node_ip(2)
    a = await sim.start(first)
    b = await sim.start(second, bootstrap=[f"{first}:{PORT}"])
    owner = await a.create_group("g")
    owner.add_bytes("f", random.Random(7).randbytes(SIZE), mtime_ms=0)
    member = await b.join_group(owner.invite().to_uri())
    with anyio.fail_after(30):
        while not [f for f in member.files() if f.name == "f"]:
            await anyio.sleep(0.1)  # virtual: the member follows the owner's repo by itself
    assert not member.has_blob(member.lookup("f")), "a member fetches blobs on sync, not on join"
    return owner, member


def _missing(owner: Group) -> tuple[str]:
    return (f"{owner.lookup('f').member_name}/f",)


def test_a_download_that_times_out_is_listed_missing(tmp_path: Path) -> None:
    async def main() -> None:
        # 20 kB/s: the 200 kB blob takes ten seconds, the sync allows two.
        async with SystemSimulator(3, tmp_path, bandwidth=20e3) as sim:
            owner, member = await _owner_and_member(sim)
            result = await member.sync_all(timeout=2.0)
            assert result.missing == _missing(owner)
            assert not member.has_blob(member.lookup("f"))
            # Not lost for good: a sync with time enough fetches it.
            assert (await member.sync_all(timeout=60.0)).missing == ()
            assert member.has_blob(member.lookup("f"))

    run(main, seed=3)


def test_a_provider_connection_replaced_by_a_duplicate_does_not_escape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with SystemSimulator(4, tmp_path) as sim:
            owner, member = await _owner_and_member(sim)
            third = await sim.start(node_ip(3), bootstrap=[f"{node_ip(1)}:{PORT}"])
            other = await third.join_group(owner.invite().to_uri())
            assert (await other.sync_all(timeout=30.0)).missing == ()  # a second holder of the blob
            with anyio.fail_after(30):
                while len(member.replication.member_connections()) < 2:
                    await anyio.sleep(0.1)
            closing: list[Connection] = []
            fetching = False
            listed = member.replication.member_connections

            def listing_then_replacing() -> list[Connection]:
                # The pool replaces the last connection the fetch lists just after it lists it,
                # as when a duplicate wins after a heal: the close has begun when the download
                # opens its channel there.
                found = listed()
                if fetching and not closing:
                    closing.append(found[-1])
                    tg.start_soon(found[-1].aclose, "duplicate")
                return found

            def progress(p: SyncProgress) -> None:
                nonlocal fetching
                fetching = p.phase == "blobs"

            monkeypatch.setattr(member.replication, "member_connections", listing_then_replacing)
            async with anyio.create_task_group() as tg:
                result = await member.sync_all(progress, timeout=30.0)
            assert [c.close_reason for c in closing] == ["duplicate"]
            # Fetched from the other holder.
            assert result.missing == ()
            assert member.has_blob(member.lookup("f"))

    run(main, seed=4)


def test_fetch_from_a_closing_connection_is_not_available(tmp_path: Path) -> None:
    """One level down: the fetcher, given a connection that closes as its download begins."""

    async def main() -> None:
        async with SystemSimulator(5, tmp_path) as sim:
            _, member = await _owner_and_member(sim)
            file = member.lookup("f")
            [connection] = member.replication.member_connections()
            async with anyio.create_task_group() as tg:
                tg.start_soon(connection.aclose, "duplicate")
                await anyio.lowlevel.checkpoint()  # the close has begun, it has not ended
                assert connection.close_reason == "duplicate"
                assert not connection.closed.is_set()
                with pytest.raises(NotAvailable):
                    await sim.nodes[node_ip(2)].blob_fetcher.fetch(
                        file.blob_hash, lambda: [connection], tag="t", what="f", timeout=30.0
                    )

    run(main, seed=5)
