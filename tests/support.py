"""Test support: a live server on a spare port, a GraphQL client and SQL statement counting."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from graph.app import create_app, uvicorn_options
from graph.ids import from_global_id
from infra.db.models import users
from infra.settings import Settings


@dataclass
class Account:
    """A signed-up, signed-in user made through the API."""

    id: str
    email: str
    token: str
    refresh_token: str = ""
    password: str = ""

    @property
    def uuid(self) -> uuid.UUID:
        """The database id behind the global id."""
        parsed = from_global_id(self.id)
        assert parsed is not None
        return parsed[1]


PASSWORD = "correct horse battery"

MakeAccount = Callable[..., Awaitable[Account]]
MakeMarket = Callable[..., Awaitable[dict[str, Any]]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StatementCounter:
    """Counts SQL statements the server sends, as a list so tests can read them too."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


class LiveServer:
    """The real app under uvicorn in a thread: real HTTP on 127.0.0.1, its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: Starlette = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sql = StatementCounter()
        engine = self.app.state.engine

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            self.sql.statements.append(statement)

        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            **uvicorn_options(settings),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


class GraphQLClient:
    """POSTs operations to the live server and returns the decoded response."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        operation_name: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        return await self.http.post("/graphql", json=body, headers=headers)

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token)
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The ``data`` of an operation that must succeed without errors."""
        payload = await self(query, variables, token)
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data


async def promote(db: AsyncEngine, account: Account, role: str) -> None:
    """Give an account a role directly in the database (bootstrapping an admin for a test)."""
    async with db.begin() as conn:
        await conn.execute(sa.update(users).where(users.c.id == account.uuid).values(role=role))


JOB = "query ($id: ID!) { job(id: $id) { id kind state attempts error finishedAt } }"
JOB_WAIT_SECONDS = 60.0


async def wait_for_job(gql: GraphQLClient, job_id: str, token: str) -> dict[str, Any]:
    """Poll ``job(id:)`` until the job has finished (COMPLETE or FAILED); return it.

    The deadline only bounds a hang: nothing is asserted about how long it took.
    """
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while True:
        job: dict[str, Any] = (await gql.data(JOB, {"id": job_id}, token=token))["job"]
        if job["state"] in ("COMPLETE", "FAILED"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {job}")
        await asyncio.sleep(0.05)
