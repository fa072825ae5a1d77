"""The submodules of ``hyphal._core``: importable both ways, complete, and the flat names' objects."""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Callable
from typing import Any

import pytest

from hyphal import _core
from hyphal.errors import DecryptionError, InvalidInput, ProofError

FT = {
    n: "ft_" + n
    for n in [
        "depth",
        "offset",
        "index",
        "parent",
        "sibling",
        "children",
        "span",
        "block_range",
        "full_roots",
    ]
}
BLOB_FUNCTIONS = [
    "group_count",
    "outboard_size",
    "encoded_len",
    "outboard",
    "encode_range",
    "verify_range",
    "outboard_reorder",
    "sealed_size",
    "opened_size",
    "open_groups",
]

# Every name of every submodule, mapped to its flat name on ``_core``.
NAMES: dict[str, dict[str, str]] = {
    "hash": {
        n: n
        for n in [
            "blake3",
            "keyed_hash",
            "derive_key",
            "Hasher",
            "leaf_hash",
            "parent_hash",
            "head_signable",
            "LEAF_KEY",
            "PARENT_KEY",
            "HEAD_KEY",
            "FEED_HEAD_NAMESPACE",
        ]
    },
    "flat_tree": {**FT, "MAX_LENGTH": "MAX_LENGTH"},
    "merkle": {
        n: n
        for n in [
            "TreeNode",
            "tree_hash",
            "tree_append",
            "proof_indices",
            "encode_proof",
            "decode_proof",
            "verify_proof",
        ]
    },
    "sign": {"SigningKey": "SigningKey", "verify": "ed25519_verify", "verify_batch": "ed25519_verify_batch"},
    "xor": {
        "distance": "xor_distance",
        "compare": "xor_compare",
        "bucket_index": "bucket_index",
        "closest": "xor_closest",
        "sort": "xor_sort",
    },
    "aead": {
        n: n
        for n in [
            "xchacha20poly1305_encrypt",
            "xchacha20poly1305_decrypt",
            "chacha20poly1305_encrypt",
            "chacha20poly1305_decrypt",
            "chacha20poly1305_encrypt_parts",
            "chacha20poly1305_decrypt_parts",
        ]
    },
    "blob": {
        "GROUP_SIZE": "BLOB_GROUP_SIZE",
        "SEGMENT_SIZE": "BLOB_SEGMENT_SIZE",
        "OutboardBuilder": "OutboardBuilder",
        "RangeDecoder": "RangeDecoder",
        "BlobSealer": "BlobSealer",
        **{n: "blob_" + n for n in BLOB_FUNCTIONS},
    },
}

H = bytes(range(32))
K = bytes(range(32, 64))
DATA = bytes(range(256)) * 200  # 51,200 bytes: several blob groups, and past the GIL-release threshold


def _sealed() -> bytes:
    sealer = _core.BlobSealer(K)
    head = sealer.update(DATA)
    last, _ = sealer.finalize()
    return head + last


ROOT, OUTBOARD = _core.blob_outboard(DATA)
PROOF_BLOCKS = [b"block %d" % i for i in range(4)]
_, PROOF_ROOTS = _core.tree_append([], PROOF_BLOCKS)
PROOF_NODES = _core.tree_append([], PROOF_BLOCKS)[0]

# (submodule, name, arguments): one call of every function, compared with the flat name's result.
CALLS: list[tuple[str, str, tuple[Any, ...]]] = [
    ("hash", "blake3", (DATA,)),
    ("hash", "keyed_hash", (K, DATA)),
    ("hash", "derive_key", ("hyphal test context", DATA)),
    ("hash", "leaf_hash", (3, DATA)),
    ("hash", "parent_hash", (7, H, K)),
    ("hash", "head_signable", (H, K, 5, 1)),
    *[("flat_tree", n, (13,)) for n in FT if n not in ("index", "full_roots")],
    ("flat_tree", "index", (2, 3)),
    ("flat_tree", "full_roots", (11,)),
    ("merkle", "tree_hash", (PROOF_ROOTS,)),
    ("merkle", "tree_append", ([], PROOF_BLOCKS)),
    ("merkle", "proof_indices", (4, 1, 2)),
    ("sign", "verify", (_core.SigningKey(H).public_key, b"m", _core.SigningKey(H).sign(b"m"))),
    ("sign", "verify_batch", ([_core.SigningKey(H).public_key], [b"m"], [_core.SigningKey(H).sign(b"m")])),
    ("xor", "distance", (H, K)),
    ("xor", "compare", (H, K, bytes(32))),
    ("xor", "bucket_index", (H, K)),
    ("xor", "closest", (H, K + bytes(32) + H, 2)),
    ("xor", "sort", (H, K + bytes(32) + H)),
    ("aead", "xchacha20poly1305_encrypt", (K, bytes(24), DATA, b"ad")),
    ("aead", "chacha20poly1305_encrypt", (K, bytes(12), DATA, b"ad")),
    ("aead", "chacha20poly1305_encrypt_parts", (K, bytes(12), [DATA, b"x"], b"ad", b"pre")),
    (
        "aead",
        "xchacha20poly1305_decrypt",
        (K, bytes(24), _core.xchacha20poly1305_encrypt(K, bytes(24), DATA)),
    ),
    ("aead", "chacha20poly1305_decrypt", (K, bytes(12), _core.chacha20poly1305_encrypt(K, bytes(12), DATA))),
    (
        "aead",
        "chacha20poly1305_decrypt_parts",
        (K, bytes(12), [_core.chacha20poly1305_encrypt(K, bytes(12), DATA)]),
    ),
    ("blob", "group_count", (len(DATA),)),
    ("blob", "outboard_size", (len(DATA),)),
    ("blob", "encoded_len", (len(DATA), 1, 3)),
    ("blob", "outboard", (DATA,)),
    ("blob", "encode_range", (ROOT, len(DATA), OUTBOARD, DATA, 0, _core.blob_group_count(len(DATA)))),
    ("blob", "verify_range", (ROOT, len(DATA), OUTBOARD, DATA, 0, _core.blob_group_count(len(DATA)))),
    ("blob", "outboard_reorder", (len(DATA), OUTBOARD, "pre")),
    ("blob", "sealed_size", (len(DATA),)),
    ("blob", "opened_size", (len(_sealed()),)),
    ("blob", "open_groups", (K, len(_sealed()), 0, _sealed())),
]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_submodule_imports_both_ways(name: str) -> None:
    sub = getattr(_core, name)
    assert importlib.import_module(f"hyphal._core.{name}") is sub
    assert sys.modules[f"hyphal._core.{name}"] is sub
    assert sub.__name__ == f"hyphal._core.{name}"
    namespace: dict[str, Any] = {}
    exec(f"from hyphal._core import {name} as a\nimport hyphal._core.{name} as b", namespace)
    assert namespace["a"] is namespace["b"] is sub


@pytest.mark.parametrize("name", sorted(NAMES))
def test_submodule_has_exactly_its_names(name: str) -> None:
    sub = getattr(_core, name)
    public = {n for n in vars(sub) if not n.startswith("_")}
    assert public == set(NAMES[name])


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in NAMES.items() for n in names])
def test_flat_name_is_the_submodule_name(module: str, name: str) -> None:
    assert getattr(_core, NAMES[module][name]) is getattr(getattr(_core, module), name)


def test_no_flat_name_outside_the_submodules() -> None:
    flat = {f for names in NAMES.values() for f in names.values()}
    extra = {"Node", *NAMES}
    public = {n for n in vars(_core) if not n.startswith("_")}
    assert public == flat | extra


def test_functions_report_their_submodule() -> None:
    assert _core.flat_tree.parent.__module__ == "hyphal._core.flat_tree"
    assert _core.blob.outboard.__module__ == "hyphal._core.blob"
    assert _core.merkle.TreeNode.__module__ == "hyphal._core.merkle"


def test_every_function_is_called_once() -> None:
    """CALLS covers every function of every submodule (classes and constants are checked elsewhere)."""
    called = {(m, n) for m, n, _ in CALLS}
    functions = {
        (m, n) for m, names in NAMES.items() for n in names if callable(getattr(getattr(_core, m), n))
    }
    classes = {(m, n) for m, n in functions if isinstance(getattr(getattr(_core, m), n), type)}
    # encode/decode/verify_proof are called together in test_proof_round_trip_through_submodule.
    proofs = {("merkle", "encode_proof"), ("merkle", "decode_proof"), ("merkle", "verify_proof")}
    assert called == functions - classes - proofs


@pytest.mark.parametrize(("module", "name", "args"), CALLS, ids=[f"{m}.{n}" for m, n, _ in CALLS])
def test_same_results_as_flat_name(module: str, name: str, args: tuple[Any, ...]) -> None:
    sub_fn: Callable[..., Any] = getattr(getattr(_core, module), name)
    flat_fn: Callable[..., Any] = getattr(_core, NAMES[module][name])
    assert sub_fn(*args) == flat_fn(*args)


def test_proof_round_trip_through_submodule() -> None:
    from hyphal._core import merkle

    nodes = {n.index: n for n in PROOF_NODES}
    indices = merkle.proof_indices(4, 1, 2)
    encoded = merkle.encode_proof(4, 0, 1, 2, [nodes[i] for i in indices])
    assert encoded == _core.encode_proof(4, 0, 1, 2, [nodes[i] for i in indices])
    assert merkle.decode_proof(encoded) == _core.decode_proof(encoded)
    tree_hash = merkle.tree_hash(PROOF_ROOTS)
    assert merkle.verify_proof(encoded, PROOF_BLOCKS[1:2], tree_hash) == _core.verify_proof(
        encoded, PROOF_BLOCKS[1:2], tree_hash
    )
    with pytest.raises(ProofError):
        merkle.verify_proof(encoded, [b"forged"], tree_hash)


def test_tree_node_keeps_its_old_name_as_an_alias() -> None:
    from hyphal._core.merkle import TreeNode

    assert _core.Node is _core.TreeNode is TreeNode
    assert TreeNode.__name__ == "TreeNode"
    node = TreeNode(2, H, 7)
    assert repr(node).startswith("TreeNode(index=2, ")
    assert pickle.loads(pickle.dumps(node)) == node


def test_classes_work_from_their_submodule() -> None:
    hasher = _core.hash.Hasher()
    hasher.update(DATA)
    assert hasher.finalize() == _core.blake3(DATA)
    key = _core.sign.SigningKey(H)
    assert _core.sign.verify(key.public_key, b"m", key.sign(b"m"))
    builder = _core.blob.OutboardBuilder()
    builder.update(DATA)
    assert builder.finalize() == ROOT
    assert _core.blob.RangeDecoder(ROOT, len(DATA), 0, 1).done is False


def test_errors_cross_as_hyphal_exceptions() -> None:
    with pytest.raises(InvalidInput):
        _core.flat_tree.parent(2**63)
    with pytest.raises(InvalidInput):
        _core.xor.distance(H, b"short")
    sealed = _core.aead.xchacha20poly1305_encrypt(K, bytes(24), DATA)
    with pytest.raises(DecryptionError):
        _core.aead.xchacha20poly1305_decrypt(K, bytes(24), sealed[:-1] + bytes([sealed[-1] ^ 1]))
