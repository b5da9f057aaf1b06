"""Telling "the database is unreachable" apart from everything else that can go wrong.

While PostgreSQL was down, requests used to get a masked INTERNAL_SERVER_ERROR
(HTTP 200 for anonymous requests, 500 for signed-in ones): an outage looked
like a bug. The edge answers an outage with 503 and ``Retry-After`` instead,
and this is the one place that knows which driver errors mean one.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

from infra.db.read_pool import ReadPool

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
    # Refused, reset or timed-out sockets while connecting, and a pool's wait that ran out:
    # only when the driver or a pool raised them. The same classes from anywhere else (a
    # resolver's own socket, file or timer) are bugs, answered 500 and logged.
    return isinstance(error, OSError) and _raised_by_database(error)


# Where the database's own socket errors and timeouts come from: the driver, SQLAlchemy (its
# pool included) and the compiled reads' pool, whose wait for a connection ends in
# TimeoutError.
_DATABASE_MODULES = ("asyncpg", "sqlalchemy", ReadPool.__module__)


def _raised_by_database(error: BaseException) -> bool:
    """True when a frame of the database's modules is on the error's traceback (between where
    it was raised and where it was caught)."""
    frame = error.__traceback__
    while frame is not None:
        module: str = frame.tb_frame.f_globals.get("__name__", "")
        if module in _DATABASE_MODULES or module.partition(".")[0] in _DATABASE_MODULES:
            return True
        frame = frame.tb_next
    return False
