"""The ``core`` suite: the Rust hot paths against the best Python-reachable baselines.

Each section builds its inputs, checks that hyphal and the baseline give the
same answer, then times both round-robin in this process. See
benches/README.md for what each row means.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from itertools import cycle, islice, repeat

import blake3 as blake3_pkg
import nacl.bindings
import nacl.signing

import hyphal
from benches.harness import (
    Row,
    call_loop,
    check,
    latency_row,
    measure,
    measure_interleaved,
    run_sections,
    throughput_row,
)
from hyphal import _core

KiB = 1024
MiB = 1024 * KiB
GB = 1e9  # throughputs are in decimal GB/s, like docs and the anchors in benches/README.md


@dataclass(frozen=True, slots=True)
class Sizes:
    tree_bytes: int
    block: int
    tree_repeat: int
    ids: int
    closest_repeat: int
    sort_repeat: int
    aead_msg: int
    aead_per_sample: int
    aead_repeat: int
    sigs: int
    sig_repeat: int
    calls: int
    call_repeat: int
    hash_bytes: int
    hash_repeat: int


FULL = Sizes(
    tree_bytes=256 * MiB,
    block=64 * KiB,
    tree_repeat=7,
    ids=1_000_000,
    closest_repeat=7,
    sort_repeat=3,
    aead_msg=64 * KiB,
    aead_per_sample=256,  # 16 MiB per sample
    aead_repeat=7,
    sigs=256,
    sig_repeat=15,
    calls=200_000,
    call_repeat=7,
    hash_bytes=64 * MiB,
    hash_repeat=9,
)

QUICK = Sizes(
    tree_bytes=16 * MiB,
    block=64 * KiB,
    tree_repeat=3,
    ids=100_000,
    closest_repeat=3,
    sort_repeat=1,
    aead_msg=64 * KiB,
    aead_per_sample=32,
    aead_repeat=3,
    sigs=256,
    sig_repeat=3,
    calls=20_000,
    call_repeat=3,
    hash_bytes=8 * MiB,
    hash_repeat=3,
)


def random_buffer(size: int) -> bytearray:
    """``size`` random bytes in one bytearray, filled 1 MiB at a time."""
    buf = bytearray(size)
    for off in range(0, size, MiB):
        n = min(MiB, size - off)
        buf[off : off + n] = os.urandom(n)
    return buf


def size_text(n: int) -> str:
    if n % MiB == 0:
        return f"{n // MiB} MiB"
    if n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} B"


def count_text(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# -- 1, 2. Merkle tree build -----------------------------------------------------


def merkle_rows(s: Sizes) -> list[Row]:
    buf = random_buffer(s.tree_bytes)
    mv = memoryview(buf)
    blocks = [mv[off : off + s.block] for off in range(0, s.tree_bytes, s.block)]
    n = len(blocks)

    # Correctness first: both modes give one tree, of the right shape, whose
    # first leaf is the protocol's leaf hash.
    t1 = hyphal.MerkleTree()
    nodes1 = t1.append(blocks, parallel=False)
    tp = hyphal.MerkleTree()
    nodesp = tp.append(blocks, parallel=True)
    check(t1.length == n, f"MerkleTree.length is {t1.length} after appending {n} blocks")
    check(t1.byte_length == s.tree_bytes, f"byte_length {t1.byte_length} != {s.tree_bytes}")
    check(len(nodes1) == 2 * n - 1, f"append returned {len(nodes1)} nodes for {n} blocks (want {2 * n - 1})")
    check(t1.hash() == tp.hash(), "tree hash differs between parallel=False and parallel=True")
    check(
        sorted((x.index, x.hash) for x in nodes1) == sorted((x.index, x.hash) for x in nodesp),
        "nodes differ between parallel=False and parallel=True",
    )
    leaf0 = next(x for x in nodes1 if x.index == 0)
    check(leaf0.hash == _core.leaf_hash(0, blocks[0]), "leaf 0 of the tree != leaf_hash(0, block 0)")
    check(
        hyphal.blake3(buf) == blake3_pkg.blake3(buf).digest(),
        "hyphal.blake3 differs from the blake3 package on the tree's bytes",
    )
    del t1, tp, nodes1, nodesp, leaf0

    def tree_single() -> None:
        hyphal.MerkleTree().append(blocks, parallel=False)

    def tree_parallel() -> None:
        hyphal.MerkleTree().append(blocks, parallel=True)

    def b3_single() -> None:
        blake3_pkg.blake3(buf).digest()

    def b3_auto() -> None:
        blake3_pkg.blake3(buf, max_threads=blake3_pkg.blake3.AUTO).digest()

    t = measure_interleaved(
        {"single": tree_single, "parallel": tree_parallel, "b3": b3_single, "b3auto": b3_auto},
        repeat=s.tree_repeat,
    )
    gb = s.tree_bytes / GB
    what = f"{size_text(s.tree_bytes)} of {size_text(s.block)} blocks"
    base = "blake3 pkg, 1 thread"
    return [
        throughput_row(
            f"Merkle build, {what}, 1 thread",
            work=gb,
            unit="GB/s",
            ours=t["single"],
            baseline_name=base,
            baseline=t["b3"],
            target_ratio=0.85,
        ),
        throughput_row(
            f"Merkle build, {what}, parallel",
            work=gb,
            unit="GB/s",
            ours=t["parallel"],
            baseline_name=base,
            baseline=t["b3"],
            target_ratio=1.0,
            strict=True,
        ),
        throughput_row(
            f"(info) blake3 pkg max_threads=AUTO, {size_text(s.tree_bytes)}",
            work=gb,
            unit="GB/s",
            ours=t["b3auto"],
            baseline_name=base,
            baseline=t["b3"],
            note="not hyphal: the blake3 package on all cores, for scale against the parallel Merkle row",
        ),
    ]


# -- 3. XOR closest / sort -------------------------------------------------------


def xor_rows(s: Sizes) -> list[Row]:
    n = s.ids
    ids = os.urandom(32 * n)
    target = os.urandom(32)
    t_int = int.from_bytes(target, "big")
    # Baseline prep, not timed: the ids as Python ints (big-endian, PROTOCOL.md §6).
    mv = memoryview(ids)
    ints = [int.from_bytes(mv[i : i + 32], "big") for i in range(0, 32 * n, 32)]
    k = 20

    def ours_closest() -> list[int]:
        return hyphal.xor_closest(target, ids, k)

    def base_closest() -> list[int]:
        return heapq.nsmallest(k, range(n), key=lambda i: ints[i] ^ t_int)

    def ours_sort() -> list[int]:
        return hyphal.xor_sort(target, ids)

    def base_sort() -> list[int]:
        return sorted(range(n), key=lambda i: ints[i] ^ t_int)

    got, want = ours_closest(), base_closest()
    check(
        got == want,
        f"xor_closest(k={k}) over {n} ids returned {got[:5]}..., heapq.nsmallest gives {want[:5]}...",
    )
    got_sorted, want_sorted = ours_sort(), base_sort()
    check(len(got_sorted) == n, f"xor_sort returned {len(got_sorted)} positions for {n} ids")
    if got_sorted != want_sorted:
        first = next(i for i, (a, b) in enumerate(zip(got_sorted, want_sorted, strict=True)) if a != b)
        check(
            False,
            f"xor_sort differs from sorted() first at rank {first}: "
            f"{got_sorted[first]} vs {want_sorted[first]}",
        )
    del got_sorted, want_sorted

    tc = measure_interleaved({"ours": ours_closest, "base": base_closest}, repeat=s.closest_repeat)
    ts = measure_interleaved({"ours": ours_sort, "base": base_sort}, repeat=s.sort_repeat)
    return [
        latency_row(
            f"xor_closest k={k} of {count_text(n)} ids",
            ours=tc["ours"],
            unit="ms",
            baseline_name="heapq.nsmallest, int keys",
            baseline=tc["base"],
            target_ratio=50,
        ),
        latency_row(
            f"(info) xor_sort of {count_text(n)} ids",
            ours=ts["ours"],
            unit="ms",
            baseline_name="sorted(), int keys",
            baseline=ts["base"],
        ),
    ]


# -- 4. XChaCha20-Poly1305 -------------------------------------------------------


def aead_rows(s: Sizes) -> list[Row]:
    key = os.urandom(32)
    pool = [(os.urandom(24), os.urandom(s.aead_msg)) for _ in range(16)]
    work = list(islice(cycle(pool), s.aead_per_sample))
    nacl_enc = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
    nacl_dec = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt
    seal, open_ = hyphal.seal, hyphal.open

    sealed: list[tuple[bytes, bytes]] = []
    for nonce, msg in pool:
        ct = seal(key, nonce, msg)
        check(ct == nacl_enc(msg, b"", nonce, key), "hyphal.seal output differs from libsodium's")
        check(open_(key, nonce, ct) == msg, "hyphal.open(seal(m)) != m")
        sealed.append((nonce, ct))
    bad = bytearray(sealed[0][1])
    bad[0] ^= 1
    try:
        open_(key, sealed[0][0], bytes(bad))
    except hyphal.DecryptionError:
        pass
    else:
        check(False, "hyphal.open accepted a tampered ciphertext")
    work_ct = list(islice(cycle(sealed), s.aead_per_sample))

    def ours_seal() -> None:
        for nonce, msg in work:
            seal(key, nonce, msg)

    def base_seal() -> None:
        for nonce, msg in work:
            nacl_enc(msg, b"", nonce, key)

    def ours_open() -> None:
        for nonce, ct in work_ct:
            open_(key, nonce, ct)

    def base_open() -> None:
        for nonce, ct in work_ct:
            nacl_dec(ct, b"", nonce, key)

    t = measure_interleaved(
        {"seal": ours_seal, "nseal": base_seal, "open": ours_open, "nopen": base_open},
        repeat=s.aead_repeat,
    )
    gb = s.aead_msg * s.aead_per_sample / GB
    m = size_text(s.aead_msg)
    return [
        throughput_row(
            f"XChaCha20-Poly1305 seal, {m} msgs",
            work=gb,
            unit="GB/s",
            ours=t["seal"],
            baseline_name="pynacl (libsodium) encrypt",
            baseline=t["nseal"],
            target_ratio=4,
        ),
        throughput_row(
            f"(info) XChaCha20-Poly1305 open, {m} msgs",
            work=gb,
            unit="GB/s",
            ours=t["open"],
            baseline_name="pynacl (libsodium) decrypt",
            baseline=t["nopen"],
        ),
    ]


# -- 5. ed25519 ------------------------------------------------------------------


def ed25519_rows(s: Sizes) -> list[Row]:
    n = s.sigs
    seeds = [os.urandom(32) for _ in range(n)]
    msgs = [os.urandom(64) for _ in range(n)]
    ours_keys = [hyphal.KeyPair(seed) for seed in seeds]
    nacl_keys = [nacl.signing.SigningKey(seed) for seed in seeds]
    pks = [kp.public_key for kp in ours_keys]
    sigs = [kp.sign(m) for kp, m in zip(ours_keys, msgs, strict=True)]

    for kp, sk, m, sig in zip(ours_keys, nacl_keys, msgs, sigs, strict=True):
        check(kp.public_key == bytes(sk.verify_key), "hyphal public key differs from pynacl's for one seed")
        check(
            sig == sk.sign(m).signature, "hyphal signature differs from pynacl's (ed25519 is deterministic)"
        )
    check(hyphal.verify_batch(pks, msgs, sigs) is True, f"verify_batch rejected {n} valid signatures")
    check(
        all(hyphal.verify(p, m, g) for p, m, g in zip(pks, msgs, sigs, strict=True)),
        "verify rejected a valid sig",
    )
    bad = list(sigs)
    tampered = bytearray(bad[n // 2])
    tampered[5] ^= 0x40
    bad[n // 2] = bytes(tampered)
    check(
        hyphal.verify_batch(pks, msgs, bad) is False,
        "verify_batch accepted a batch with one tampered signature",
    )
    check(
        hyphal.verify(pks[n // 2], msgs[n // 2], bad[n // 2]) is False, "verify accepted a tampered signature"
    )

    triples = list(zip(pks, msgs, sigs, strict=True))
    VerifyKey = nacl.signing.VerifyKey
    verify, verify_batch = hyphal.verify, hyphal.verify_batch

    def ours_batch() -> None:
        verify_batch(pks, msgs, sigs)

    def ours_single() -> None:
        for p, m, g in triples:
            verify(p, m, g)

    def base_verify() -> None:
        for p, m, g in triples:
            VerifyKey(p).verify(m, g)

    ours_signers = list(zip(ours_keys, msgs, strict=True))
    nacl_signers = list(zip(nacl_keys, msgs, strict=True))

    def ours_sign() -> None:
        for kp, m in ours_signers:
            kp.sign(m)

    def base_sign() -> None:
        for sk, m in nacl_signers:
            sk.sign(m)

    t = measure_interleaved(
        {
            "batch": ours_batch,
            "single": ours_single,
            "base": base_verify,
            "sign": ours_sign,
            "nsign": base_sign,
        },
        repeat=s.sig_repeat,
    )
    return [
        throughput_row(
            f"ed25519 verify_batch of {n}",
            work=n,
            unit="sig/s",
            ours=t["batch"],
            baseline_name="pynacl VerifyKey(pk).verify, 1 by 1",
            baseline=t["base"],
            target_ratio=2.5,
        ),
        throughput_row(
            "(info) ed25519 verify, 1 by 1",
            work=n,
            unit="sig/s",
            ours=t["single"],
            baseline_name="pynacl VerifyKey(pk).verify, 1 by 1",
            baseline=t["base"],
        ),
        throughput_row(
            "(info) ed25519 sign, 64 B msgs",
            work=n,
            unit="sig/s",
            ours=t["sign"],
            baseline_name="pynacl SigningKey.sign",
            baseline=t["nsign"],
        ),
    ]


# -- 6. call overhead ------------------------------------------------------------


def call_rows(s: Sizes) -> list[Row]:
    b64 = os.urandom(64)
    key = os.urandom(32)
    a, b, c = os.urandom(32), os.urandom(32), os.urandom(32)
    calls = s.calls
    pkg_b3 = blake3_pkg.blake3

    check(hyphal.blake3(b64) == pkg_b3(b64).digest(), "hyphal.blake3 differs from the blake3 package on 64 B")
    check(
        hyphal.keyed_hash(key, b64) == pkg_b3(b64, key=key).digest(),
        "hyphal.keyed_hash differs from the blake3 package's keyed mode",
    )
    check(
        hyphal.xor_distance(a, b) == bytes(x ^ y for x, y in zip(a, b, strict=True)),
        "xor_distance is not the bytewise XOR",
    )
    want_cmp = (int.from_bytes(a, "big") ^ int.from_bytes(c, "big")) - (
        int.from_bytes(b, "big") ^ int.from_bytes(c, "big")
    )
    got_cmp = hyphal.xor_compare(c, a, b)
    check(
        (got_cmp > 0) - (got_cmp < 0) == (want_cmp > 0) - (want_cmp < 0),
        f"xor_compare(target, a, b) returned {got_cmp}; "
        f"d(target, a) - d(target, b) is {'<' if want_cmp < 0 else '>='} 0",
    )

    def base_loop() -> None:
        for _ in repeat(None, calls):
            pkg_b3(b64).digest()

    def empty_loop() -> None:
        for _ in repeat(None, calls):
            pass

    fns = {
        "blake3": call_loop(hyphal.blake3, (b64,), calls),
        "keyed_hash": call_loop(hyphal.keyed_hash, (key, b64), calls),
        "xor_distance": call_loop(hyphal.xor_distance, (a, b), calls),
        "xor_compare": call_loop(hyphal.xor_compare, (c, a, b), calls),
        "base": base_loop,
    }
    t = measure_interleaved(fns, repeat=s.call_repeat)
    loop_ns = measure(empty_loop, repeat=s.call_repeat).best_ns / calls
    note = (
        f"per-call times include the Python loop (~{loop_ns:.0f} ns/iteration here); "
        f"{count_text(calls)} calls per sample"
    )
    labels = {
        "blake3": "call: hyphal.blake3(64 B)",
        "keyed_hash": "call: hyphal.keyed_hash(k, 64 B)",
        "xor_distance": "call: hyphal.xor_distance(a, b)",
        "xor_compare": "call: hyphal.xor_compare(t, a, b)",
    }
    rows = []
    for i, (fn_name, label) in enumerate(labels.items()):
        row = latency_row(
            label,
            ours=t[fn_name],
            per_sample=calls,
            unit="ns/call",
            baseline_name="blake3 pkg blake3(64 B).digest()",
            baseline=t["base"],
            max_figure=1000,
            target="< 1 µs/call",
            note=note if i == 0 else "",
        )
        row.details["loop_ns_per_iteration"] = loop_ns
        rows.append(row)
    return rows


# -- 7. plain BLAKE3 -------------------------------------------------------------


def blake3_rows(s: Sizes) -> list[Row]:
    buf = random_buffer(s.hash_bytes)
    want = blake3_pkg.blake3(buf).digest()
    check(hyphal.blake3(buf) == want, "hyphal.blake3 differs from the blake3 package")
    check(
        hyphal.blake3(buf, parallel=True) == want,
        "hyphal.blake3(parallel=True) differs from the blake3 package",
    )

    def ours() -> None:
        hyphal.blake3(buf)

    def ours_par() -> None:
        hyphal.blake3(buf, parallel=True)

    def base() -> None:
        blake3_pkg.blake3(buf).digest()

    def base_auto() -> None:
        blake3_pkg.blake3(buf, max_threads=blake3_pkg.blake3.AUTO).digest()

    t = measure_interleaved(
        {"ours": ours, "base": base, "par": ours_par, "auto": base_auto}, repeat=s.hash_repeat
    )
    gb = s.hash_bytes / GB
    m = size_text(s.hash_bytes)
    return [
        throughput_row(
            f"(info) hyphal.blake3, {m}, 1 thread",
            work=gb,
            unit="GB/s",
            ours=t["ours"],
            baseline_name="blake3 pkg, 1 thread",
            baseline=t["base"],
        ),
        throughput_row(
            f"(info) hyphal.blake3, {m}, parallel",
            work=gb,
            unit="GB/s",
            ours=t["par"],
            baseline_name="blake3 pkg, max_threads=AUTO",
            baseline=t["auto"],
        ),
    ]


def run(quick: bool) -> list[Row]:
    s = QUICK if quick else FULL
    return run_sections(
        [
            ("Merkle tree build", lambda: merkle_rows(s)),
            ("XOR closest / sort", lambda: xor_rows(s)),
            ("XChaCha20-Poly1305", lambda: aead_rows(s)),
            ("ed25519", lambda: ed25519_rows(s)),
            ("call overhead", lambda: call_rows(s)),
            ("plain BLAKE3", lambda: blake3_rows(s)),
        ]
    )


__all__ = ["FULL", "QUICK", "Sizes", "run"]
