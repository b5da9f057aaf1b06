"""A live server of a test module's own whose cost limit admits pages of 100 nested lists.

The shared server keeps the default limits (1,000 points an operation), which
is what clients get. Tests that measure statement counts at ``first: 100``
import these fixtures to run against a server that admits such operations
(``from tests.api.roomy import gql, http, server``), over the same database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest

from infra.settings import Settings
from tests.support import GraphQLClient, LiveServer

ROOMY_COST = 100_000


def roomy(settings: Settings, **changes: object) -> Settings:
    """``settings`` with the cost limit raised (and any other ``changes``)."""
    return dataclasses.replace(settings, query_max_cost=ROOMY_COST, **changes)  # type: ignore[arg-type]


@contextmanager
def running(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    with running(roomy(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def resolver_server(settings: Settings) -> Iterator[LiveServer]:
    """The same, with the compiled read path off: every query runs the resolvers."""
    with running(roomy(settings, compiled_reads=False)) as live:
        yield live


@pytest.fixture(scope="module")
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture(scope="module")
async def resolver_gql(resolver_server: LiveServer) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=resolver_server.url, timeout=30) as client:
        yield GraphQLClient(client)
