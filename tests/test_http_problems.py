"""The HTTP API's error table and Range parsing, without a daemon."""

from __future__ import annotations

import inspect

import pytest

from hyphal import errors
from hyphal.http import problems
from hyphal.http.downloads import RangeNotSatisfiable, parse_range


def test_every_error_class_has_its_own_row() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.HyphalError) and cls.__module__ == errors.__name__
    ]
    missing = [cls.__name__ for cls in classes if cls not in problems.ERROR_TABLE]
    assert not missing, f"add these to hyphal.http.problems.ERROR_TABLE: {missing}"


def test_codes_are_unique_and_statuses_are_errors() -> None:
    codes = [p.code for p in problems.ERROR_TABLE.values()] + list(problems.HTTP_PROBLEMS)
    assert len(codes) == len(set(codes))
    assert all(
        400 <= p.status < 600 for p in [*problems.ERROR_TABLE.values(), *problems.HTTP_PROBLEMS.values()]
    )


def test_a_subclass_defined_elsewhere_takes_its_ancestors_row() -> None:
    class Elsewhere(errors.NotAvailable):
        pass

    assert problems.problem_of(Elsewhere("x")).code == "not_available"
    assert problems.problem_of(KeyError("x")).code == "internal"
    assert problems.problem_of(TimeoutError()).status == 504


def test_a_body_is_rfc_9457_and_hides_what_is_not_ours() -> None:
    found = problems.error_body(errors.SeqConflict("lost"))
    assert found == {
        "type": problems.TYPE_BASE + "seq_conflict",
        "title": problems.ERROR_TABLE[errors.SeqConflict].title,
        "status": 409,
        "detail": "lost",
        "code": "seq_conflict",
        "error": "SeqConflict",
    }
    leaked = problems.error_body(RuntimeError("/home/someone/secret path"))
    assert "/home" not in leaked["detail"]
    assert leaked["status"] == 500


@pytest.mark.parametrize(
    ("header", "size", "want"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=2-", 10, (2, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=5-100", 10, (5, 10)),
        ("bytes=1-2,4-5", 10, None),  # several ranges: the whole is a valid answer
        ("items=0-1", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_ranges(header: str | None, size: int, want: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == want


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=5-4", "bytes=-0", "bytes=10-20"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 10)
