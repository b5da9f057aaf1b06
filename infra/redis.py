"""The Redis client: short timeouts and no hidden retries on the request path."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SOCKET_TIMEOUT = 0.05


def create_redis(url: str) -> Redis:
    """redis-py's defaults froze requests for a minute against a stalled server.

    Tens of milliseconds of socket timeout, no retries and a bounded blocking
    pool make a stalled Redis cost a request 50 ms, not 60 s.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=32,
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return Redis(connection_pool=pool)
