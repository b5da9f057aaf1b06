"""Which errors mean "the database is unreachable" (503) and which are bugs (500).

Only errors that come from the database's driver, SQLAlchemy or the read
pool count: the real ones are made here (a refused connection, an exhausted
pool); an ``OSError`` or ``TimeoutError`` raised anywhere else (a file, a
socket, a timer of a resolver's own) is an internal error, however much it
looks like a network fault.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import asyncpg
import sqlalchemy as sa
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    parse,
)
from sqlalchemy.ext.asyncio import create_async_engine

from graph.errors import ErrorCode
from graph.execution import run_operation
from infra.db.outages import is_outage
from infra.db.read_pool import ReadPool
from infra.settings import Settings
from tests.conftest import _asyncpg_dsn
from tests.support import free_port


def caught(raise_it: Any) -> BaseException:
    try:
        raise_it()
    except BaseException as error:
        return error
    raise AssertionError("nothing was raised")


async def caught_async(awaitable: Any) -> BaseException:
    try:
        await awaitable
    except BaseException as error:
        return error
    raise AssertionError("nothing was raised")


def refused_socket() -> None:
    raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def missing_file() -> None:
    open("/nonexistent/marketgraph/file")  # noqa: SIM115 - raises before anything is opened


async def a_timer_of_its_own() -> None:
    async with asyncio.timeout(0):
        await asyncio.sleep(1)


async def test_errors_raised_outside_the_database_are_not_outages() -> None:
    assert not is_outage(caught(refused_socket))
    assert not is_outage(caught(missing_file))
    assert not is_outage(caught(lambda: (_ for _ in ()).throw(TimeoutError("a timer"))))
    assert not is_outage(await caught_async(a_timer_of_its_own()))
    assert not is_outage(ValueError("a bug"))


async def test_a_refused_database_connection_is_an_outage() -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    direct = await caught_async(asyncpg.connect(closed))
    assert isinstance(direct, OSError)
    assert is_outage(direct)
    engine = create_async_engine(closed.replace("postgresql:", "postgresql+asyncpg:"))
    try:
        through_sqlalchemy = await caught_async(_select_one(engine))
    finally:
        await engine.dispose()
    assert is_outage(through_sqlalchemy)


async def _select_one(engine: Any) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def test_an_exhausted_read_pool_is_an_outage(settings: Settings) -> None:
    dsn = _asyncpg_dsn(settings.database_url)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    pool = ReadPool(connect, 1, acquire_seconds=0.01, lease_seconds=30, idle_seconds=300)
    await pool.open()
    held = await pool.acquire()
    try:
        waited = await caught_async(pool.acquire())
    finally:
        pool.release(held)
        await pool.close()
    assert isinstance(waited, TimeoutError)
    assert is_outage(waited)


async def _flaky(_root: None, _info: Any, kind: str) -> int:
    """Fails as a resolver's own socket or timer would."""
    if kind == "socket":
        refused_socket()
    await a_timer_of_its_own()
    return 1


_SCHEMA = GraphQLSchema(
    GraphQLObjectType(
        "Query",
        {
            "flaky": GraphQLField(
                GraphQLInt, args={"kind": GraphQLArgument(GraphQLString)}, resolve=_flaky
            )
        },
    )
)


async def test_an_unrelated_os_or_timeout_error_in_a_resolver_is_an_internal_error() -> None:
    for kind in ("socket", "timer"):
        executed = await run_operation(
            _SCHEMA,
            parse(f'{{ flaky(kind: "{kind}") }}'),
            None,
            None,
            None,
            is_outage,
            hide_suggestions=True,
        )
        assert executed.outage is None
        assert executed.internal_errors == 1
        assert executed.errors[0]["extensions"]["code"] == ErrorCode.INTERNAL_SERVER_ERROR.value
