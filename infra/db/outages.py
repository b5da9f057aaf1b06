"""Telling "the database is unreachable" apart from everything else that can go wrong.

While PostgreSQL was down, requests used to get a masked INTERNAL_SERVER_ERROR
(HTTP 200 for anonymous requests, 500 for signed-in ones): an outage looked
like a bug. The edge answers an outage with 503 and ``Retry-After`` instead,
and this is the one place that knows which driver errors mean one.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import exc as sa_exc

# asyncpg: the server refused, dropped or never finished the connection, or is starting up.
_DRIVER_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def is_outage(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be reached right now."""
    if isinstance(error, sa_exc.TimeoutError):
        return True  # the pool stayed exhausted for longer than its timeout
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        original = getattr(error.orig, "__cause__", None) or error.orig
        return original is not None and original is not error and is_outage(original)
    if isinstance(error, _DRIVER_OUTAGES):
        return True
    # Refused, reset or timed-out sockets while connecting.
    return isinstance(error, ConnectionError | asyncio.TimeoutError | TimeoutError) or (
        isinstance(error, OSError) and error.errno is not None
    )
