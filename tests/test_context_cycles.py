"""A stack that unwinds under cancellation leaves no loop in the escaping exception's context.

anyio's task_done walks ``__context__`` to the first CancelledError; a loop there spun a node at
100% CPU while it stopped (seen when two nodes' stacks unwound the same CancelledError).
"""

from __future__ import annotations

from hyphal.lifecycle import break_context_cycle


def test_a_context_loop_is_cut_where_it_closes() -> None:
    a, b, c = ValueError("a"), KeyError("b"), OSError("c")
    a.__context__, b.__context__, c.__context__ = b, c, b  # a -> b -> c -> b -> ...
    break_context_cycle(a)
    assert a.__context__ is b
    assert b.__context__ is c
    assert c.__context__ is None


def test_a_chain_without_a_loop_is_left_as_it_is() -> None:
    a, b = ValueError("a"), KeyError("b")
    a.__context__ = b
    break_context_cycle(a)
    assert a.__context__ is b
    assert b.__context__ is None
