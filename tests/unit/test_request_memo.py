"""The request memo: what a request's bytes stand for, kept bounded in entries and bytes."""

from __future__ import annotations

from typing import Any, cast

from graph.http.memo import MEMO_MAX_REQUEST_BYTES, Planned, RequestMemo


def planned(tag: int) -> Planned:
    # The memo never looks inside what it keeps: a stand-in tells entries apart.
    return cast(Planned, cast(Any, tag))


def got(memo: RequestMemo, raw: bytes, method: str = "POST") -> object:
    """The stand-in kept for ``raw``, or None."""
    return memo.get(method, raw)


def test_a_kept_request_is_found_by_method_and_bytes_only() -> None:
    memo = RequestMemo()
    memo.put("POST", b'{"query":"{ a }"}', planned(1))
    assert got(memo, b'{"query":"{ a }"}') == 1
    assert got(memo, b'{"query":"{ a }"}', "GET") is None
    assert got(memo, b'{"query":"{ a }" }') is None


def test_the_least_recently_used_entry_goes_first() -> None:
    memo = RequestMemo(entries=3)
    for tag in range(3):
        memo.put("POST", b"r%d" % tag, planned(tag))
    assert got(memo, b"r0") == 0  # now the most recently used
    memo.put("POST", b"r3", planned(3))
    assert len(memo) == 3
    assert got(memo, b"r1") is None
    assert [got(memo, b"r%d" % tag) for tag in (0, 2, 3)] == [0, 2, 3]


def test_the_bytes_kept_are_bounded() -> None:
    memo = RequestMemo(entries=1_000, max_bytes=1_000)
    for tag in range(10):
        memo.put("POST", bytes([tag]) * 300, planned(tag))
    assert len(memo) == 3
    assert [got(memo, bytes([tag]) * 300) for tag in (7, 8, 9)] == [7, 8, 9]


def test_a_large_request_is_not_kept() -> None:
    memo = RequestMemo()
    big = b"x" * (MEMO_MAX_REQUEST_BYTES + 1)
    memo.put("POST", big, planned(1))
    assert got(memo, big) is None
    assert len(memo) == 0


def test_a_request_kept_twice_keeps_its_first_entry_and_counts_once() -> None:
    memo = RequestMemo(entries=10, max_bytes=100)
    memo.put("POST", b"x" * 60, planned(1))
    memo.put("POST", b"x" * 60, planned(2))
    memo.put("POST", b"y" * 30, planned(3))
    assert got(memo, b"x" * 60) == 1
    assert got(memo, b"y" * 30) == 3
