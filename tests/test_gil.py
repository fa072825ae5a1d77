"""Large inputs are processed with the GIL released, so other Python threads keep running."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

import pytest

import hyphal

BIG = os.urandom(32 * 2**20)
BLOCKS = [memoryview(BIG)[i : i + 65536] for i in range(0, len(BIG), 65536)]
KEY = os.urandom(32)
NONCE = os.urandom(24)


def progress_of_other_thread_during(call: Callable[[], object]) -> int:
    """How many loop iterations this thread makes while a worker thread is inside ``call``.

    With a long switch interval, a thread waiting for the GIL may not ask the
    holder to drop it for a whole second. If ``call`` holds the GIL, the
    worker enters it, returns and sets ``done`` before this thread can run:
    the count is 0. Only a call that releases the GIL lets this thread count.
    """
    entered = threading.Event()
    done = threading.Event()

    def worker() -> None:
        entered.set()
        call()
        done.set()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        assert entered.wait(10)
        count = 0
        while not done.is_set():
            count += 1
        thread.join(10)
    finally:
        sys.setswitchinterval(previous)
    return count


@pytest.mark.parametrize(
    "call",
    [
        lambda: hyphal.blake3(BIG),
        lambda: hyphal.MerkleTree().append(BLOCKS, parallel=False),
        lambda: hyphal.seal(KEY, NONCE, BIG),
    ],
    ids=["blake3", "tree_append", "seal"],
)
def test_other_threads_run_during_large_calls(call: Callable[[], object]) -> None:
    # A call holding the GIL for its whole run would leave the spinner at exactly 0:
    # CPython cannot preempt a thread that is inside a C function.
    assert progress_of_other_thread_during(call) > 0
