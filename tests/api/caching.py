"""Support for the response cache's tests: servers of their own with the cache on.

Each server gets its own Redis key prefix and job queue under the run's, so
its cache starts empty and its jobs are run by its own in-process worker (a
worker of another server would write without telling this server's cache).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.settings import Settings
from tests.support import LiveServer, until_redis_answers


def cached_settings(settings: Settings, **changes: Any) -> Settings:
    """The run's settings with the response cache on, in a key space of their own."""
    space = f"{settings.redis_key_prefix}{uuid.uuid4().hex[:8]}:"
    fields: dict[str, Any] = {
        "response_cache": True,
        "redis_key_prefix": space,
        "job_queue": f"{space}jobs",
    }
    return dataclasses.replace(settings, **{**fields, **changes})


@dataclass
class Reply:
    status: int
    payload: dict[str, Any]
    headers: httpx.Headers

    @property
    def data(self) -> Any:
        assert "errors" not in self.payload, self.payload["errors"]
        return self.payload["data"]

    @property
    def cache(self) -> str:
        return str(self.payload["extensions"]["cache"])


class CacheClient:
    """POSTs (or GETs) operations to one server and reads what the cache said."""

    def __init__(self, server: LiveServer, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http

    async def ask(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        **extra: Any,
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] = {"query": query, **extra}
        if variables is not None:
            body["variables"] = variables
        response = await self.http.post("/graphql", json=body, headers=headers)
        return Reply(response.status_code, response.json(), response.headers)

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        reply = await self.ask(query, variables, token)
        assert reply.status == 200, reply.payload
        return reply.data

    def statements(self) -> list[str]:
        return list(self.server.sql.statements)

    def reset(self) -> None:
        self.server.sql.reset()


@asynccontextmanager
async def cache_server(settings: Settings) -> AsyncIterator[CacheClient]:
    live = LiveServer(settings)
    live.start()
    try:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as http:
            if settings.redis_url:
                # Every test here starts from a cache that works: on a slow machine the
                # server's first connection to Redis could time out and leave it
                # answering BYPASS for the breaker's first seconds.
                await until_redis_answers(http)
            yield CacheClient(live, http)
    finally:
        live.stop()


WAIT_SECONDS = 30.0


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check`` holds; the deadline only bounds a hang."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def markets_locked(db: AsyncEngine) -> AsyncIterator[None]:
    """Every read of the markets table blocks until the block ends: requests sent meanwhile
    are held in flight."""
    async with db.begin() as conn:
        await conn.execute(sa.text("LOCK TABLE markets IN ACCESS EXCLUSIVE MODE"))
        yield
