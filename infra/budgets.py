"""Cost budgets (``domain.ports.Budgets``): in Redis for all processes, in memory otherwise.

Both implementations run the same algorithm, GCRA (the generic cell rate
algorithm, a token bucket written as one number): a budget is stored as the
moment it will be full again, its "theoretical arrival time" (TAT). With
``interval = 1 / restore_per_second`` and ``tolerance = capacity * interval``:

- the points available now are ``capacity - (TAT - now) / interval``;
- taking ``cost`` points moves the TAT ``cost * interval`` later, and is refused
  (nothing taken) when that would put it more than ``tolerance`` ahead of now;
- a refund moves it earlier, never before now (a budget never exceeds its
  capacity);
- a budget whose TAT has passed is full, so the Redis key expires at the TAT
  and idle budgets vanish by themselves.

In Redis each call is one Lua script on one key (Cluster-safe), timed by
Redis's own clock (``TIME``), so processes on hosts with skewed clocks share
one budget exactly. The in-process implementation checks and takes with no
await in between, which makes it exact among the tasks of its event loop.
Redis calls go through the shared ``RedisBreaker``: while Redis is
unreachable the in-process budgets answer (per process, starting full).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import lru_cache, partial
from typing import Any

from redis.exceptions import NoScriptError

from domain.limits import BudgetSpec, BudgetState
from infra.redis import RedisBreaker, RedisBusy, no_answer
from infra.redis_wire import RedisWire, Script, abandon

COMPONENT = "budgets"
# What a refusal under overload (too many Redis commands already waiting) tells the client.
BUSY_RETRY_SECONDS = 1.0
# Slack for floating-point error when a take spends exactly what is left: a
# nanosecond here, half a microsecond (Redis's clock unit) in the script.
_EPSILON_S = 1e-9
# How often the in-process budgets drop the ones that have refilled completely.
_SWEEP_SECONDS = 60.0

TAKE, REFUND, PEEK = "take", "refund", "peek"

# ARGV: mode, capacity, interval (µs per point), points. Returns
# {allowed (0/1), µs until full (rounded up), µs until the take would fit (rounded up)}.
# The TAT is stored with %.17g, which reads back as the same double.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[2]) * interval
local points = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if mode == 'take' then
  local wanted = tat + points * interval
  if wanted - now > tolerance + 0.5 then
    return {0, math.ceil(tat - now), math.ceil(wanted - tolerance - now)}
  end
  tat = wanted
elseif mode == 'refund' then
  tat = math.max(tat - points * interval, now)
end
if mode ~= 'peek' then
  if tat > now then
    redis.call('SET', KEYS[1], string.format('%.17g', tat),
      'PX', string.format('%d', math.ceil((tat - now) / 1000)))
  else
    redis.call('DEL', KEYS[1])
  end
end
return {1, math.ceil(tat - now), 0}
"""


def _state(
    spec: BudgetSpec, allowed: bool, full_in: float, retry_after: float | None
) -> BudgetState:
    """A state from the seconds until full and until the asked-for points fit."""
    used = full_in * spec.restore_per_second
    remaining = min(spec.capacity, max(0, math.floor(spec.capacity - used + 1e-6)))
    return BudgetState(
        allowed=allowed,
        capacity=spec.capacity,
        remaining=remaining,
        restore_per_second=spec.restore_per_second,
        retry_after_seconds=retry_after,
        reset_seconds=full_in,
    )


@lru_cache(maxsize=64)
def _interval_text(restore_per_second: float) -> str:
    """The microseconds between two restored points, as the script reads them: the shortest
    text that reads back as the same float (worked out once per budget size: a float's
    repr cost a budget call half a microsecond)."""
    return repr(1_000_000 / restore_per_second)


def _checked(points: int, what: str) -> int:
    if points < 0:
        raise ValueError(f"{what} must not be negative")
    return points


def _refunded(spec: BudgetSpec, points: int, full_in: float) -> BudgetState:
    """What a refund of ``points`` leaves a budget that was full in ``full_in`` seconds:
    what the script and ``apply`` work out, from the state the caller already has."""
    return _state(spec, True, max(0.0, full_in - points / spec.restore_per_second), 0.0)


class MemoryBudgets:
    """Per-process budgets: the embedded default, and the fallback while Redis is away."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._next_sweep = 0.0

    async def take(self, key: str, cost: int, spec: BudgetSpec) -> BudgetState:
        return self.apply(TAKE, key, _checked(cost, "cost"), spec)

    async def refund(self, key: str, points: int, spec: BudgetSpec) -> BudgetState:
        return self.apply(REFUND, key, _checked(points, "points"), spec)

    async def peek(self, key: str, spec: BudgetSpec) -> BudgetState:
        return self.apply(PEEK, key, 0, spec)

    def take_now(self, key: str, cost: int, spec: BudgetSpec) -> Coroutine[Any, Any, BudgetState]:
        # Nothing to send: the take happens when it is awaited, as ``take``'s does.
        return self.take(key, cost, spec)

    def refund_later(self, key: str, points: int, spec: BudgetSpec, full_in: float) -> BudgetState:
        return self.apply(REFUND, key, _checked(points, "points"), spec)

    def apply(self, mode: str, key: str, points: int, spec: BudgetSpec) -> BudgetState:
        """One call, synchronously: nothing else runs between the check and the take."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        tat = max(self._tats.get(key, now), now)
        taking = mode == TAKE
        if taking and points > spec.capacity:
            return _state(spec, False, tat - now, None)  # it never fits
        interval = 1.0 / spec.restore_per_second
        tolerance = spec.capacity * interval
        if taking:
            wanted = tat + points * interval
            if wanted - now > tolerance + _EPSILON_S:
                return _state(spec, False, tat - now, wanted - tolerance - now)
            tat = wanted
        elif mode == REFUND:
            tat = max(tat - points * interval, now)
        if mode != PEEK:
            if tat > now:
                self._tats[key] = tat
            else:
                self._tats.pop(key, None)
        return _state(spec, True, tat - now, 0.0)

    def _sweep(self, now: float) -> None:
        """Forget budgets that are full again, so memory follows current traffic."""
        for key in [key for key, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
        self._next_sweep = now + _SWEEP_SECONDS


class RedisBudgets:
    """Budgets shared by every process through one Redis key each (``<prefix><key>``).

    Commands go over a ``RedisWire`` of the budgets' own (every request takes and most
    refund: through redis-py each call cost about 80 µs of CPU, here a few). A cache
    hit's take is sent before it is awaited (``take_now``) and its refund never is
    (``refund_later``): the hit waits for Redis once, for its lookup and take together.

    Under overload (more commands waiting on the wire than it accepts) a ``take`` is
    refused for a second rather than answered from a per-process count that
    never saw the other processes' spending; ``refund`` and ``peek`` then
    answer from the in-process budgets (the refund is lost: the strict side).
    """

    def __init__(
        self,
        wire: RedisWire,
        prefix: str,
        breaker: RedisBreaker,
        fallback: MemoryBudgets | None = None,
    ) -> None:
        self._wire = wire
        self._prefix = prefix
        self._breaker = breaker
        self._fallback = fallback or MemoryBudgets()
        self._script = Script(_GCRA)

    async def take(self, key: str, cost: int, spec: BudgetSpec) -> BudgetState:
        _checked(cost, "cost")
        if cost > spec.capacity:
            state = await self._call(PEEK, key, 0, spec)
            return _state(spec, False, state.reset_seconds, None)
        return await self._call(TAKE, key, cost, spec)

    async def refund(self, key: str, points: int, spec: BudgetSpec) -> BudgetState:
        return await self._call(REFUND, key, _checked(points, "points"), spec)

    async def peek(self, key: str, spec: BudgetSpec) -> BudgetState:
        return await self._call(PEEK, key, 0, spec)

    def take_now(self, key: str, cost: int, spec: BudgetSpec) -> Coroutine[Any, Any, BudgetState]:
        _checked(cost, "cost")
        if cost <= spec.capacity and self._breaker.available and self._wire.connected:
            try:
                reply = self._wire.call(*self._command(TAKE, key, cost, spec), reuse=True)
            except RedisBusy:
                pass  # ``take`` answers for an overloaded wire
            else:
                return self._taken(reply, key, cost, spec)
        return self.take(key, cost, spec)

    async def _taken(
        self, reply: Awaitable[Any], key: str, cost: int, spec: BudgetSpec
    ) -> BudgetState:
        """``take_now``'s answer, once its command was sent: through the breaker like any
        call, from the fallback when Redis went away meanwhile."""
        try:
            answer = await self._breaker.run(COMPONENT, partial(_given, reply), no_answer)
        except NoScriptError:
            # Redis lost its scripts (a restart, SCRIPT FLUSH), so nothing was taken:
            # ``take`` loads the script and takes.
            return await self.take(key, cost, spec)
        if answer is None:
            if isinstance(reply, asyncio.Future):
                abandon([reply])  # the breaker was open: nobody reads it
            return self._fallback.apply(TAKE, key, cost, spec)
        return _answered(spec, answer)

    def refund_later(self, key: str, points: int, spec: BudgetSpec, full_in: float) -> BudgetState:
        """Send the refund and answer without waiting for Redis: the state is worked out
        from ``full_in``. A refund Redis never runs (the connection lost, or the script
        flushed) is lost, the strict side; with the breaker open it goes to the fallback."""
        _checked(points, "points")
        if self._breaker.available and self._wire.tell(
            *self._command(REFUND, key, points, spec), reuse=True
        ):
            return _refunded(spec, points, full_in)
        return self._fallback.apply(REFUND, key, points, spec)

    def _command(self, mode: str, key: str, points: int, spec: BudgetSpec) -> tuple[str | int, ...]:
        """The script's EVALSHA, as ``RedisWire.evalsha`` would send it."""
        interval = _interval_text(spec.restore_per_second)
        return (
            "EVALSHA",
            self._script.sha,
            1,
            self._prefix + key,
            mode,
            spec.capacity,
            interval,
            points,
        )

    async def _call(self, mode: str, key: str, points: int, spec: BudgetSpec) -> BudgetState:
        # A partial, not a closure: no coroutine of its own to resume. The same client
        # asking the same query sends the same command: reused packed.
        shared = partial(
            self._wire.evalsha,
            self._script,
            (self._prefix + key,),
            (mode, spec.capacity, _interval_text(spec.restore_per_second), points),
            reuse=True,
        )
        try:
            reply = await self._breaker.run(COMPONENT, shared, no_answer)
        except RedisBusy:
            if mode == TAKE:
                state = self._fallback.apply(PEEK, key, 0, spec)
                return _state(spec, False, state.reset_seconds, BUSY_RETRY_SECONDS)
            return self._fallback.apply(mode, key, points, spec)
        if reply is None:  # Redis is away: this process's budgets answer
            return self._fallback.apply(mode, key, points, spec)
        return _answered(spec, reply)


def _given(reply: Awaitable[Any]) -> Awaitable[Any]:
    """A command already sent, as the operation ``RedisBreaker.run`` awaits."""
    return reply


def _answered(spec: BudgetSpec, reply: list[Any]) -> BudgetState:
    """The script's reply: allowed, µs until full, µs until the points would fit."""
    allowed, full_in_us, retry_us = reply
    return _state(spec, bool(int(allowed)), int(full_in_us) / 1_000_000, int(retry_us) / 1_000_000)
