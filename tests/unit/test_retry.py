"""Running a use case again after a transient conflict."""

from __future__ import annotations

import pytest

from domain.errors import TransientConflict
from domain.retry import retrying


async def test_a_conflict_is_retried_until_it_succeeds() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientConflict
        return "done"

    assert await retrying(attempt, base_delay=0) == "done"
    assert calls == 3


async def test_the_last_conflict_surfaces_after_the_attempts() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise TransientConflict

    with pytest.raises(TransientConflict):
        await retrying(attempt, attempts=3, base_delay=0)
    assert calls == 3


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not a conflict")

    with pytest.raises(ValueError, match="a bug"):
        await retrying(attempt, base_delay=0)
    assert calls == 1
