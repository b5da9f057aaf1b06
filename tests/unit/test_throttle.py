"""The in-memory throttle (embedded default and Redis fallback) and client keys."""

from __future__ import annotations

import pytest

from domain.clients import client_key
from infra.throttle import MemoryThrottle


async def test_a_window_fills_and_a_released_slot_frees_a_place() -> None:
    throttle = MemoryThrottle()
    slots = [await throttle.acquire("k", 3, 60) for _ in range(3)]
    assert all(slot.retry_after is None for slot in slots)
    full = await throttle.acquire("k", 3, 60)
    assert full.retry_after is not None
    assert 1 <= full.retry_after <= 60
    await throttle.release("k", slots[0].id)
    assert (await throttle.acquire("k", 3, 60)).retry_after is None


async def test_forgotten_windows_do_not_pile_up() -> None:
    throttle = MemoryThrottle()
    for i in range(100):
        slot = await throttle.acquire(f"key-{i}", 5, 60)
        assert throttle.forget(f"key-{i}", slot.id)
    assert throttle._slots == {}
    assert not throttle.forget("key-0", "never-given")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("not an address", "unknown"),
        (None, "unknown"),
    ],
)
def test_client_keys_count_ipv6_by_slash_64(address: str | None, key: str) -> None:
    assert client_key(address) == key
