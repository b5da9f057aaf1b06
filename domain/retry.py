"""Running a use case again when the database aborted it to settle a conflict."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from domain.errors import TransientConflict

T = TypeVar("T")

ATTEMPTS = 4
BASE_DELAY_SECONDS = 0.01


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_SECONDS,
) -> T:
    """Run ``attempt`` (a whole unit of work) up to ``attempts`` times.

    Backoff doubles with full jitter, so two transactions that deadlocked on
    each other do not collide again in lockstep.
    """
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except TransientConflict:
            if number == attempts:
                raise
            await asyncio.sleep(random.uniform(0, base_delay * 2**number))  # noqa: S311
    raise AssertionError("unreachable")
