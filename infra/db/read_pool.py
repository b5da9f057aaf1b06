"""The compiled read path's connections: a fixed number, each lent to one reader at a time.

asyncpg's own pool was a tenth of the CPU a compiled request costs (profile of Q3
at 32 connections: its acquire with a timeout, its release through a shielded
task, an idle timer rearmed on every release, a client-side timer per
statement). This one does what the read path needs with no timer per request:
connections are lent last-in first-out, a reader that finds them all lent
waits in line, and one tick a second bounds every wait, every lease and every
idle connection.

The bounds, and what each answers:

- a reader waits at most ``acquire_seconds`` for a connection, then gets
  ``TimeoutError`` (an outage to the edge: 503, as when the other pool is
  exhausted);
- a connection lent for longer than ``lease_seconds`` is terminated, so a
  statement stuck on a frozen or unreachable server fails
  (``ConnectionDoesNotExistError``, also an outage) instead of holding a
  connection for ever; PostgreSQL's own ``statement_timeout`` bounds a slow one;
- a connection idle for longer than ``idle_seconds`` is closed, but for one.

The same tick reports how many connections the pool holds and lends (``report``,
the metrics' gauges): a sample a second is what a scrape needs, and updating
gauges on every lease would cost each read a few microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

TICK_SECONDS = 1.0


class ReadPool:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        size: int,
        *,
        acquire_seconds: float,
        lease_seconds: float,
        idle_seconds: float,
        report: Callable[[int, int], None] | None = None,
    ) -> None:
        """``report`` is called with the connections held and those lent: at each tick,
        once open, and with zeros when closed."""
        self._connect = connect
        self._report = report
        self._size = size
        self._acquire_seconds = acquire_seconds
        self._lease_seconds = lease_seconds
        self._idle_seconds = idle_seconds
        # Idle connections with the time each came back, the longest idle first.
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        # Lent connections with the time each was lent.
        self._lent: dict[asyncpg.Connection, float] = {}
        # Slots taken by connections being opened (by a reader or for a waiter).
        self._opening = 0
        # Readers waiting, with their deadlines. A waiter's result is a connection, or None:
        # a slot reserved for it, in which it opens one itself.
        self._waiters: deque[tuple[asyncio.Future[asyncpg.Connection | None], float]] = deque()
        self._closing: set[asyncio.Task[None]] = set()
        self._tick: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def size(self) -> int:
        """Connections open or being opened now."""
        return len(self._idle) + len(self._lent) + self._opening

    @property
    def lent(self) -> int:
        return len(self._lent)

    async def open(self) -> None:
        """Open one connection now, so a database that cannot be reached fails the start."""
        connection = await self._connect()
        self._idle.append((connection, self._now()))
        self._sample()
        self._tick = asyncio.get_running_loop().call_later(TICK_SECONDS, self._on_tick)

    async def close(self) -> None:
        self._closed = True
        if self._tick is not None:
            self._tick.cancel()
        for waiter, _ in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the read pool is closed"))
        self._waiters.clear()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(c.close(timeout=5) for c, _ in idle), return_exceptions=True)
        for connection in self._lent:
            connection.terminate()
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._report is not None:
            self._report(0, 0)

    async def acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the read pool is closed")
        while self._idle:
            connection, _ = self._idle.pop()
            if not connection.is_closed():
                self._lent[connection] = self._now()
                return connection
        if self.size < self._size:
            self._opening += 1
            return await self._open_lent()
        return await self._wait()

    def release(self, connection: asyncpg.Connection, *, reusable: bool = True) -> None:
        """Give a connection back; ``reusable=False`` when its state is unknown (a statement
        was interrupted): it is terminated and its slot passed on."""
        self._lent.pop(connection, None)
        if not reusable or self._closed or connection.is_closed():
            if not connection.is_closed():
                connection.terminate()
            self._hand_over(None)
        else:
            self._hand_over(connection)

    # --- inside --------------------------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _open_lent(self) -> asyncpg.Connection:
        """Open a connection in a slot already counted in ``_opening``, and lend it."""
        try:
            connection = await self._connect()
        except BaseException:
            self._opening -= 1
            # The slot is free again: the next waiter may have better luck.
            self._hand_over(None)
            raise
        self._opening -= 1
        if self._closed:
            connection.terminate()
            raise asyncpg.InterfaceError("the read pool is closed")
        self._lent[connection] = self._now()
        return connection

    async def _wait(self) -> asyncpg.Connection:
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append((waiter, self._now() + self._acquire_seconds))
        try:
            granted = await waiter
        except asyncio.CancelledError:
            # Cancelled after being served: what it was given goes back.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                given = waiter.result()
                if given is None:
                    self._opening -= 1
                    self._hand_over(None)
                else:
                    self.release(given)
            raise
        if granted is None:
            return await self._open_lent()
        return granted

    def _hand_over(self, connection: asyncpg.Connection | None) -> None:
        """To the first reader still waiting, or back to the idle ones; None hands over the
        right to open a connection (nothing happens when nobody waits)."""
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if waiter.done():
                continue  # cancelled, or timed out
            if connection is None:
                self._opening += 1
            else:
                self._lent[connection] = self._now()
            waiter.set_result(connection)
            return
        if connection is not None:
            self._idle.append((connection, self._now()))

    def _on_tick(self) -> None:
        now = self._now()
        if self._waiters:
            waiting: deque[tuple[asyncio.Future[asyncpg.Connection | None], float]] = deque()
            for waiter, deadline in self._waiters:
                if waiter.done():
                    continue
                if deadline <= now:
                    waiter.set_exception(
                        TimeoutError(
                            f"no read connection became free in {self._acquire_seconds:g} s"
                        )
                    )
                else:
                    waiting.append((waiter, deadline))
            self._waiters = waiting
        for connection, since in list(self._lent.items()):
            if now - since > self._lease_seconds:
                # The reader's statement fails with ConnectionDoesNotExistError; its release
                # then passes the slot on.
                connection.terminate()
        while len(self._idle) > 1 and now - self._idle[0][1] > self._idle_seconds:
            connection, _ = self._idle.pop(0)
            task = asyncio.get_running_loop().create_task(self._close_quietly(connection))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._sample()
        self._tick = asyncio.get_running_loop().call_later(TICK_SECONDS, self._on_tick)

    def _sample(self) -> None:
        if self._report is not None:
            self._report(len(self._idle) + len(self._lent), len(self._lent))

    @staticmethod
    async def _close_quietly(connection: asyncpg.Connection) -> None:
        with contextlib.suppress(Exception):
            await connection.close(timeout=5)
