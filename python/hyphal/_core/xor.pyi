"""``hyphal._core.xor``: XOR distance over 256-bit ids, for the Kademlia DHT."""

from typing_extensions import Buffer

def distance(a: Buffer, b: Buffer) -> bytes: ...
def compare(target: Buffer, a: Buffer, b: Buffer) -> int: ...
def bucket_index(a: Buffer, b: Buffer) -> int: ...
def closest(target: Buffer, ids: Buffer, k: int) -> list[int]:
    """Positions of the ``k`` ids nearest ``target`` in a buffer of 32-byte ids, nearest first."""

def sort(target: Buffer, ids: Buffer) -> list[int]:
    """Positions of all ids in a buffer of 32-byte ids, nearest ``target`` first."""

__all__ = [
    "bucket_index",
    "closest",
    "compare",
    "distance",
    "sort",
]
