"""The membership log (§17.1): signed entries, what they add up to, the rule for concurrent
changes, and every device converging whatever order entries arrive in (partitions, loss,
duplicates and reordering in :mod:`hyphal.sim.membership`)."""

from __future__ import annotations

import itertools
import random

import pytest

from hyphal.errors import DecodeError, InvalidInput, SignatureError, Unauthorized
from hyphal.groups.membership import (
    MAX_PARENTS,
    Entry,
    EntryKind,
    MembershipLog,
    decode_entry,
    replay,
)
from hyphal.signing import KeyPair
from hyphal.sim.membership import LogNetwork

GROUP = KeyPair(bytes(range(32)))
ORIGIN, SECOND, THIRD, FOURTH = (KeyPair(bytes([i]) * 32) for i in (1, 2, 3, 4))
STRANGER = KeyPair(bytes([9]) * 32)


def started() -> MembershipLog:
    log = MembershipLog(GROUP.public_key)
    log.genesis(GROUP, [ORIGIN.public_key])
    return log


def test_genesis_approve_remove_and_repo_limits() -> None:
    log = MembershipLog(GROUP.public_key)
    assert not log.state.active
    assert log.state.is_writer(STRANGER.public_key)
    log.genesis(GROUP, [ORIGIN.public_key])
    assert log.state.origin == ORIGIN.public_key
    assert log.state.repo_limit(SECOND.public_key) == 0  # read-only: none of its blocks count
    log.approve(ORIGIN, SECOND.public_key, "Firefox on Ubuntu 64-bit")
    assert log.state.writers[SECOND.public_key].name == "Firefox on Ubuntu 64-bit"
    assert log.state.repo_limit(SECOND.public_key) is None
    log.approve(SECOND, THIRD.public_key, "phone")  # any authorised device approves
    assert log.state.writers[THIRD.public_key].approved_by == SECOND.public_key
    log.remove(THIRD, SECOND.public_key, repo_length=5)
    assert not log.state.is_writer(SECOND.public_key)
    assert log.state.repo_limit(SECOND.public_key) == 5  # its old writes stay valid
    with pytest.raises(Unauthorized):
        log.approve(SECOND, FOURTH.public_key, "x")  # a removed device approves nothing
    with pytest.raises(InvalidInput):
        log.approve(ORIGIN, SECOND.public_key, "back")  # removed stays removed
    with pytest.raises(InvalidInput):
        log.genesis(GROUP, [ORIGIN.public_key])


def test_entries_round_trip_and_malformed_ones_are_decode_errors() -> None:
    log = started()
    entry = log.approve(ORIGIN, SECOND.public_key, "laptop")
    raw = entry.encode()
    assert decode_entry(raw) == entry
    assert decode_entry(raw).id == entry.id
    for bad in (raw[:-1], raw + b"\0", b"\x02" + raw[1:], raw[:1] + b"\x09" + raw[2:], b""):
        with pytest.raises(DecodeError):
            decode_entry(bad)
    unsorted = Entry(
        EntryKind.APPROVE, GROUP.public_key, ORIGIN.public_key, (b"\2" * 32, b"\1" * 32), b"d" * 32
    )
    with pytest.raises(DecodeError, match="sorted"):
        decode_entry(unsorted.signed_part() + bytes(64))
    with pytest.raises(InvalidInput):
        Entry.sign(
            ORIGIN,
            EntryKind.APPROVE,
            GROUP.public_key,
            [bytes([i]) * 32 for i in range(MAX_PARENTS + 1)],
            device=SECOND.public_key,
        )


def test_forged_unsigned_and_foreign_entries_are_refused_and_change_nothing() -> None:
    log = started()
    heads = log.heads()
    before = (dict(log.entries), log.state)
    # A stranger (never approved) approves itself: refused, whatever its signature.
    with pytest.raises(Unauthorized, match="no earlier entry made a writer"):
        log.add(Entry.sign(STRANGER, EntryKind.APPROVE, GROUP.public_key, heads, device=STRANGER.public_key))
    # An approval "by the origin" signed by someone else: the signature does not verify.
    forged = Entry.sign(STRANGER, EntryKind.APPROVE, GROUP.public_key, heads, device=SECOND.public_key)
    with pytest.raises(SignatureError):
        log.add(
            Entry(
                forged.kind,
                forged.group_key,
                ORIGIN.public_key,
                forged.parents,
                forged.device,
                signature=forged.signature,
            )
        )
    with pytest.raises(SignatureError):
        log.add(
            Entry(
                forged.kind,
                forged.group_key,
                ORIGIN.public_key,
                forged.parents,
                forged.device,
                signature=bytes(64),
            )
        )
    with pytest.raises(Unauthorized, match="genesis"):
        log.add(Entry.sign(ORIGIN, EntryKind.GENESIS, GROUP.public_key, (), founders=(ORIGIN.public_key,)))
    other = KeyPair(bytes([7]) * 32)
    with pytest.raises(Unauthorized, match="another group"):
        log.add(Entry.sign(other, EntryKind.GENESIS, other.public_key, (), founders=(ORIGIN.public_key,)))
    assert (dict(log.entries), log.state) == before


def test_an_approval_by_a_removed_device_does_not_count() -> None:
    log = started()
    log.approve(ORIGIN, SECOND.public_key, "b")
    stale_heads = log.heads()
    log.remove(ORIGIN, SECOND.public_key, 0)
    # SECOND, not having seen its removal, approves FOURTH: kept (it may be a parent elsewhere), void.
    late = Entry.sign(SECOND, EntryKind.APPROVE, GROUP.public_key, stale_heads, device=FOURTH.public_key)
    assert log.add(late) == [late]
    assert late.id in log.state.void
    assert not log.state.is_writer(FOURTH.public_key)


def test_the_last_writer_cannot_be_removed() -> None:
    log = started()
    with pytest.raises(InvalidInput, match="last writer"):
        log.remove(ORIGIN, ORIGIN.public_key, 0)


def test_an_entry_waits_for_its_parents_then_counts() -> None:
    source = started()
    approve = source.approve(ORIGIN, SECOND.public_key, "b")
    child = source.approve(SECOND, THIRD.public_key, "c")
    genesis = next(e for e in source.entries.values() if e.kind == EntryKind.GENESIS)
    replica = MembershipLog(GROUP.public_key)
    assert replica.add(child) == []
    assert replica.add(approve) == []
    assert set(replica.pending) == {child.id, approve.id}
    assert [e.id for e in replica.add(genesis)] == [genesis.id, approve.id, child.id]
    assert replica.state == source.state
    assert not replica.pending
    assert replica.add(child) == []  # a duplicate changes nothing


def _all_orders(entries: list[Entry]) -> list[MembershipLog]:
    logs = []
    for order in itertools.permutations(entries):
        log = MembershipLog(GROUP.public_key)
        for entry in order:
            log.add(entry)
        logs.append(log)
    return logs


def test_two_devices_removing_each_other_converge_on_the_senior_staying() -> None:
    log = started()
    log.approve(ORIGIN, SECOND.public_key, "b")
    log.approve(ORIGIN, THIRD.public_key, "c")
    base = [decode_entry(raw) for raw in log.encoded()]
    heads = log.heads()
    # SECOND and THIRD, partitioned, remove each other at once. SECOND was approved first.
    second_removes = Entry.sign(SECOND, EntryKind.REMOVE, GROUP.public_key, heads, device=THIRD.public_key)
    third_removes = Entry.sign(THIRD, EntryKind.REMOVE, GROUP.public_key, heads, device=SECOND.public_key)
    results = _all_orders([*base, second_removes, third_removes])
    assert all(r.state == results[0].state for r in results)
    state = results[0].state
    assert set(state.writers) == {ORIGIN.public_key, SECOND.public_key}
    assert set(state.removed) == {THIRD.public_key}
    assert third_removes.id in state.void


@pytest.mark.parametrize("approver_senior", [True, False])
def test_approve_and_remove_at_once_follow_seniority(approver_senior: bool) -> None:
    log = started()
    log.approve(ORIGIN, SECOND.public_key, "b")
    log.approve(ORIGIN, THIRD.public_key, "c")
    base = [decode_entry(raw) for raw in log.encoded()]
    heads = log.heads()
    approver, remover = (SECOND, THIRD) if approver_senior else (THIRD, SECOND)
    approve = Entry.sign(approver, EntryKind.APPROVE, GROUP.public_key, heads, device=FOURTH.public_key)
    remove = Entry.sign(remover, EntryKind.REMOVE, GROUP.public_key, heads, device=approver.public_key)
    results = _all_orders([*base, approve, remove])
    assert all(r.state == results[0].state for r in results)
    state = results[0].state
    assert approver.public_key in state.removed
    # The senior author acts first: a senior approver's approval stands; a junior's does not.
    assert state.is_writer(FOURTH.public_key) is approver_senior


def test_replay_is_a_function_of_the_set() -> None:
    log = started()
    log.approve(ORIGIN, SECOND.public_key, "b")
    shuffled = list(log.entries.items())
    random.Random(1).shuffle(shuffled)
    assert replay(dict(shuffled), GROUP.public_key) == log.state


def _random_history(seed: int) -> LogNetwork:
    """Four devices, random approvals and removals on both sides of a partition, entries lost,
    duplicated and delivered in random order; then healed."""
    devices = [ORIGIN, SECOND, THIRD, FOURTH]
    net = LogNetwork(GROUP, devices, seed=seed)
    rng = random.Random(seed)
    net.genesis([ORIGIN.public_key])
    net.run()
    for device in devices[1:]:
        net.approve(ORIGIN, device.public_key, f"d{device.public_key[0]}")
    net.run()
    keys = [d.public_key for d in devices]
    cut = rng.randrange(1, 4)
    net.partition(keys[:cut], keys[cut:])
    for _ in range(10):
        author = rng.choice(devices)
        state = net.logs[author.public_key].state
        target = rng.choice(keys)
        try:
            if rng.random() < 0.6 and target in state.writers and len(state.writers) > 1:
                net.remove(author, target, rng.randrange(10))
            else:
                net.approve(author, KeyPair(rng.randbytes(32)).public_key, "new")
        except (Unauthorized, InvalidInput):
            pass  # the author is not a writer on its side: nothing written
        for _ in range(rng.randrange(5)):
            net.step()
    net.settle()
    return net


def test_simulated_partitions_loss_duplicates_and_reordering_converge() -> None:
    """After healing, every device agrees, and agrees with the replay of the union of what anyone
    wrote, over 150 seeded histories, many of which hold conflicting concurrent changes."""
    conflicts = 0
    for seed in range(150):
        net = _random_history(seed)
        states = list(net.states().values())
        assert all(s == states[0] for s in states), f"seed {seed}: devices disagree"
        union: dict[bytes, Entry] = {}
        for log in net.logs.values():
            union.update(log.entries)
            assert not log.pending
        assert replay(union, GROUP.public_key) == states[0], f"seed {seed}"
        assert states[0].writers, "some writer always remains"
        conflicts += bool(states[0].void)
    assert conflicts >= 15, f"only {conflicts} histories held entries voided by a concurrent removal"


def test_mutual_removal_across_a_partition_in_the_simulator() -> None:
    net = LogNetwork(GROUP, [ORIGIN, SECOND, THIRD], seed=5, loss=0.3, duplicate=0.5)
    net.genesis([ORIGIN.public_key])
    net.approve(ORIGIN, SECOND.public_key, "b")
    net.approve(ORIGIN, THIRD.public_key, "c")
    net.settle()
    net.partition([ORIGIN.public_key, SECOND.public_key], [THIRD.public_key])
    net.remove(SECOND, THIRD.public_key)
    net.remove(THIRD, SECOND.public_key)
    net.run()
    # Each side believes its own removal while apart.
    assert not net.logs[ORIGIN.public_key].state.is_writer(THIRD.public_key)
    assert not net.logs[THIRD.public_key].state.is_writer(SECOND.public_key)
    net.settle()
    for state in net.states().values():
        assert set(state.writers) == {ORIGIN.public_key, SECOND.public_key}
