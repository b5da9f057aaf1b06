"""The Redis client and the circuit breaker every Redis user of a process shares.

Three incidents shaped the settings here:

- redis-py's defaults (5 s socket timeout, retries with backoff) froze a
  request for about a minute against a stalled Redis. So command and connect
  timeouts are short, nothing is retried on the request path, and a breaker
  (below) stops paying even those once an outage is seen: a stalled Redis
  costs the requests in flight one timeout, then nothing.
- A burst of 50 concurrent sign-ins ran a 32-connection pool dry; waiting for a
  pooled connection timed out after the same 50 ms as a command, the throttle
  took that for an outage and fell back to an empty per-process count, and 36
  of 50 failures got through a limit of 20. Waiting for a connection is
  back-pressure, not an outage: the pool is sized for the concurrency a process
  accepts (``REDIS_POOL_SIZE``), opened before traffic arrives (``warm_up``),
  a caller waits up to ``POOL_WAIT_SECONDS`` for a connection, and running out
  of them raises ``RedisBusy``, which no breaker counts as a failure.
- With that fixed, the same burst still tripped the breaker on a healthy
  Redis: timeouts run on the event loop's clock, and a loop busy with 50
  requests runs up to 150 ms late, so 50 ms command and connect timeouts fired
  on replies that had arrived. ``SOCKET_TIMEOUT`` and ``CONNECT_TIMEOUT`` are
  sized above that lag; the breaker is what keeps a stall cheap.

Only a real failure (connection refused or reset, a timeout on a stalled
server, a server that cannot take writes) trips the breaker. While it is open,
callers are answered by their in-process fallback without touching Redis;
every ``RETRY_SECONDS`` one call is let through as a probe, and a success
closes the breaker again (so does a successful readiness ping). An outage is
logged once when it starts and once when it ends, not per request; outages
and fallbacks are counted in ``marketgraph_redis_outages_total`` and
``marketgraph_redis_fallbacks_total``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = structlog.get_logger("marketgraph.redis")

# One command's round trip on the request path. Measured on the event loop's
# clock, which under a burst runs late by itself (150 ms at worst with 50
# concurrent sign-ins; 50 ms timed out healthy replies waiting behind other
# requests' work). A stalled server costs the requests in flight this once.
SOCKET_TIMEOUT = 0.25
# Opening a connection takes several round trips on that same loop. A refused
# connection fails at once whatever this is; only a host that drops packets
# costs it, and only until the breaker opens.
CONNECT_TIMEOUT = 0.5
# How long a caller may queue for a pooled connection under a burst. Far longer
# than a command takes (well under a millisecond), so only real overload waits
# this long; bounded, so overload answers instead of piling up.
POOL_WAIT_SECONDS = 2.0
# Connections per process: more than the requests a process runs at once,
# each of which holds a connection only for the duration of one command.
DEFAULT_POOL_SIZE = 64
# How long an open breaker answers from the fallback before letting a probe through.
RETRY_SECONDS = 5.0
# Replies of a reachable server that nevertheless cannot serve us (out of
# memory, refusing writes after a failed save, busy with a script): an outage.
_SERVER_STATE_ERRORS = ("OOM", "MISCONF", "BUSY", "MASTERDOWN", "CLUSTERDOWN")
# The server states redis-py gives classes of their own, the prefix stripped from their
# messages (an OOM reply is OutOfMemoryError("command not allowed ...")).
_SERVER_STATES = (
    ReadOnlyError,
    OutOfMemoryError,
    MasterDownError,
    BusyLoadingError,
    ClusterDownError,
    TryAgainError,
)

FALLBACKS = Counter(
    "marketgraph_redis_fallbacks_total",
    "Calls answered by an in-process fallback because Redis was unreachable, by component.",
    ["component"],
)
OUTAGES = Counter(
    "marketgraph_redis_outages_total", "Times the Redis circuit breaker opened (outages seen)."
)
AVAILABLE = Gauge(
    "marketgraph_redis_available",
    "1 while Redis is in use, 0 while the circuit breaker answers from in-process fallbacks.",
    multiprocess_mode="livemin",
)

T = TypeVar("T")


class RedisBusy(RedisError):
    """No pooled connection freed up within ``POOL_WAIT_SECONDS``: overload, not an outage.

    Deliberately not a ``ConnectionError``: the caller chooses what overload
    means for it (a limiter refuses, a cache bypasses), and no breaker trips.
    """


class _Pool(BlockingConnectionPool):
    """A blocking pool whose "no connection available" is ``RedisBusy``.

    redis-py raises the same ``ConnectionError`` for a pool wait that timed
    out as for a refused connection; only the former comes from the wait.
    """

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            # redis-py leaves this method unannotated.
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as error:
            if isinstance(error.__cause__, asyncio.TimeoutError):
                raise RedisBusy("every pooled Redis connection is in use") from error
            raise


def create_redis(
    url: str, pool_size: int = DEFAULT_POOL_SIZE, pool_wait_seconds: float = POOL_WAIT_SECONDS
) -> Redis:
    """A client for the request path: see the module docstring for why each setting."""
    pool = _Pool.from_url(
        url,
        max_connections=pool_size,
        timeout=pool_wait_seconds,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return Redis(connection_pool=pool)


async def warm_up(redis: Redis, connections: int) -> None:
    """Open the pool's connections before traffic arrives, so a first burst does not
    have to connect (the slow part) on a busy event loop. Errors are the caller's.

    Concurrent pings hold a connection each, so the pool opens ``connections``.
    """
    results = await asyncio.gather(
        *(redis.ping() for _ in range(connections)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


def is_outage(error: BaseException) -> bool:
    """True for failures that mean Redis cannot serve us now; False for bugs and overload."""
    if isinstance(error, RedisBusy):
        return False
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError, *_SERVER_STATES)):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(_SERVER_STATE_ERRORS)


async def no_answer() -> None:
    """A ``RedisBreaker.run`` fallback for callers that do without Redis's answer."""


class RedisBreaker:
    """The circuit breaker of one process's Redis, shared by all its users.

    ``run`` sends an operation to Redis while the breaker is closed and
    answers from the caller's fallback while it is open. Only one probe is in
    flight at a time while open, so a stalled server costs one request per
    ``retry_seconds``, not every request. Safe for concurrent tasks of one
    event loop: state changes happen between awaits.
    """

    def __init__(
        self,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._open = False
        self._opened_at = 0.0
        self._retry_at = 0.0
        self._probing = False
        self._fallbacks = 0
        self._outages = 0
        AVAILABLE.set(1)

    @property
    def available(self) -> bool:
        """False while the breaker is open (Redis believed unreachable)."""
        return not self._open

    @property
    def outages(self) -> int:
        """How many times this breaker has opened."""
        return self._outages

    def describe(self) -> str:
        """The Redis line of ``/health/ready``."""
        return "ok" if not self._open else "unavailable, limits in process"

    async def run(
        self,
        component: str,
        operation: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
        on_outage: Callable[[], None] | None = None,
    ) -> T:
        """``operation()`` on Redis, or ``fallback()`` when Redis is (or just went) away.

        ``component`` labels the fallback counter ("throttle", "budgets", ...);
        ``on_outage`` is called when this very operation failed with an outage
        (not when the breaker was already open). Raises ``RedisBusy`` when the
        pool stayed exhausted, and lets any other non-outage error (a script bug)
        propagate.
        """
        # Closed, the common case: no bookkeeping (every cache hit comes through here twice).
        probing = False
        if self._open:
            if not self._probe():
                return await self._fall_back(component, fallback)
            probing = True
        try:
            result = await operation()
        except Exception as error:
            if not is_outage(error):
                raise
            self.failed(error)
            if on_outage is not None:
                on_outage()
        else:
            if self._open:  # the probe's answer, or one that came after another call failed
                self.succeeded()
            return result
        finally:
            if probing:
                self._probing = False
        return await self._fall_back(component, fallback)

    async def _fall_back(self, component: str, fallback: Callable[[], Awaitable[T]]) -> T:
        self._fallbacks += 1
        FALLBACKS.labels(component).inc()
        return await fallback()

    async def check(self, redis: Redis) -> str:
        """Ping for readiness, and let the answer close or open the breaker."""
        try:
            await redis.ping()
        except RedisBusy:
            return "ok"  # every connection is busy serving: reachable
        except Exception as error:
            if not is_outage(error):
                raise
            self.failed(error)
        else:
            self.succeeded()
        return self.describe()

    def succeeded(self) -> None:
        if self._open:
            self._open = False
            AVAILABLE.set(1)
            log.info(
                "redis.recovered",
                outage_seconds=round(self._clock() - self._opened_at, 3),
                fallbacks=self._fallbacks,
            )

    def failed(self, error: BaseException) -> None:
        now = self._clock()
        self._retry_at = now + self._retry_seconds
        if not self._open:
            self._open = True
            self._opened_at = now
            self._fallbacks = 0
            self._outages += 1
            OUTAGES.inc()
            AVAILABLE.set(0)
            log.warning(
                "redis.unavailable",
                error=type(error).__name__,
                detail=str(error)[:200],
                retry_seconds=self._retry_seconds,
                note="limits fall back to in-process counts until Redis answers again",
            )

    def _probe(self) -> bool:
        """While open: whether this call is the one probe (no other is until it ends) rather
        than one for the fallback."""
        if self._probing or self._clock() < self._retry_at:
            return False
        self._probing = True
        return True
