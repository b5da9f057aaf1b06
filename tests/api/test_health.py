"""Liveness and readiness, including a Redis nobody listens on and a database that goes away."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from infra.settings import Settings
from tests.support import LiveServer, free_port


@contextlib.asynccontextmanager
async def live(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A server of the test's own; started off the loop so the loop can serve a proxy."""
    server = LiveServer(settings)
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)


class TcpProxy:
    """Forwards a local port to PostgreSQL, so a test can take "the database" away.

    Cutting the proxy drops every connection and refuses new ones, which is
    what the server sees when its database goes down, without touching the
    shared PostgreSQL.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65_536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def test_health_is_ok(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.embedded
async def test_ready_when_everything_is_reachable(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    response = await http.get("/health/ready")
    assert response.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if settings.redis_url else {})
    assert response.json() == {"status": "ready", "checks": expected}


async def test_ready_but_degraded_when_redis_is_unreachable(settings: Settings) -> None:
    assert settings.redis_url, "the PostgreSQL test settings configure Redis"
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    async with live(dataclasses.replace(settings, redis_url=nobody)) as client:
        response = await client.get("/health/ready")
        # Redis is a cache and a limiter here, not a dependency of the API itself: a load
        # balancer must keep sending requests to a server that answers them.
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "degraded",
            "checks": {"database": "ok", "redis": "unavailable, limits in process"},
        }
        served = await client.post(
            "/graphql", json={"query": "{ markets(first: 1) { totalCount } }"}
        )
        assert served.status_code == 200
        assert "errors" not in served.json()
        alive = await client.get("/health")
        assert alive.status_code == 200


async def test_not_ready_while_the_database_is_unreachable(settings: Settings) -> None:
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.open()
    through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        async with live(dataclasses.replace(settings, database_url=through_proxy)) as client:
            before = await client.get("/health/ready")
            assert before.status_code == 200, before.text

            await proxy.cut()
            for _ in range(2):  # the dropped pooled connection, then a refused new one
                down = await client.get("/health/ready")
                assert down.status_code == 503
                body = down.json()
                assert body["status"] == "unavailable"
                assert body["checks"]["database"].startswith("unavailable")
                assert body["checks"]["redis"] == "ok"
            alive = await client.get("/health")
            assert alive.status_code == 200

            await proxy.open()
            after = await client.get("/health/ready")
            assert after.status_code == 200, after.text
    finally:
        await proxy.cut()
