"""Sliding-window attempt counting: in Redis for all processes, in memory when Redis is away.

A slot is taken before the attempt and given back if the attempt succeeds, so
only failures stay counted, and concurrent attempts cannot all pass the check.
Both counts are exact: the Redis one is a single script per check, and the
in-process one checks and takes with no await in between. When Redis is
unreachable the shared breaker (``infra.redis``) answers from the per-process
count; when every pooled connection stays busy the throttle refuses for a
second rather than guess from a count that never saw the earlier attempts.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections import defaultdict

from redis.asyncio import Redis

from domain.ports import Slot
from infra.redis import RedisBreaker, RedisBusy

COMPONENT = "throttle"
# What a refusal under overload tells the client to wait.
BUSY_RETRY_SECONDS = 1

# Atomic check-and-take on one sorted set of slot ids scored by time (ms).
# Returns {1, 0} when a slot was taken, {0, retry_after_ms} when the window is full.
_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now_ms}
end
redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
"""


def _seconds(ms: float) -> int:
    return max(1, math.ceil(ms / 1000))


class MemoryThrottle:
    """Per-process sliding windows: the embedded default, and the fallback."""

    def __init__(self) -> None:
        self._slots: dict[str, dict[str, float]] = defaultdict(dict)
        self._longest_window = 0
        self._next_sweep = 0.0

    async def acquire(self, key: str, limit: int, window_seconds: int) -> Slot:
        now = time.monotonic()
        self._longest_window = max(self._longest_window, window_seconds)
        if now >= self._next_sweep:
            self._sweep(now)
        slots = self._slots[key]
        for slot_id, at in list(slots.items()):
            if at <= now - window_seconds:
                del slots[slot_id]
        if len(slots) >= limit:
            oldest = min(slots.values())
            return Slot(id="", retry_after=_seconds((oldest + window_seconds - now) * 1000))
        slot_id = uuid.uuid4().hex
        slots[slot_id] = now
        return Slot(id=slot_id, retry_after=None)

    async def release(self, key: str, slot_id: str) -> None:
        self.forget(key, slot_id)

    def forget(self, key: str, slot_id: str) -> bool:
        """Give a slot back; False when this throttle never gave it out."""
        slots = self._slots.get(key)
        if slots is None or slots.pop(slot_id, None) is None:
            return False
        if not slots:
            del self._slots[key]
        return True

    def _sweep(self, now: float) -> None:
        """Forget windows with nothing left in them, so memory follows current traffic."""
        horizon = now - self._longest_window
        for key in list(self._slots):
            slots = self._slots[key]
            for slot_id, at in list(slots.items()):
                if at <= horizon:
                    del slots[slot_id]
            if not slots:
                del self._slots[key]
        self._next_sweep = now + max(self._longest_window, 1)


class RedisThrottle:
    """Shared windows in Redis (one key per window, so it is Cluster-safe)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        breaker: RedisBreaker,
        fallback: MemoryThrottle | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._breaker = breaker
        self._fallback = fallback or MemoryThrottle()
        self._script = redis.register_script(_ACQUIRE)

    async def acquire(self, key: str, limit: int, window_seconds: int) -> Slot:
        slot_id = uuid.uuid4().hex

        async def shared() -> Slot:
            taken, retry_ms = await self._script(
                keys=[self._prefix + key], args=[window_seconds * 1000, limit, slot_id]
            )
            if int(taken):
                return Slot(id=slot_id, retry_after=None)
            return Slot(id="", retry_after=_seconds(float(retry_ms)))

        async def local() -> Slot:
            return await self._fallback.acquire(key, limit, window_seconds)

        try:
            return await self._breaker.run(COMPONENT, shared, local)
        except RedisBusy:
            return Slot(id="", retry_after=BUSY_RETRY_SECONDS)

    async def release(self, key: str, slot_id: str) -> None:
        if self._fallback.forget(key, slot_id):
            return  # it was taken while Redis was away

        async def shared() -> None:
            await self._redis.zrem(self._prefix + key, slot_id)

        async def keep() -> None:
            """Redis is away: the slot stays counted until its window passes (the strict side)."""

        with contextlib.suppress(RedisBusy):
            await self._breaker.run(COMPONENT, shared, keep)
