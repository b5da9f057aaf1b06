"""Test support: a live server on a spare port, a GraphQL client and SQL statement counting."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from structlog.contextvars import get_contextvars

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


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresProcess:
    """A PostgreSQL server of a test's own: initdb into a temporary directory, a spare port.

    Fault tests stop and start it (by the PID in its postmaster.pid, never by name);
    the machine's shared PostgreSQL is never touched. PostgreSQL refuses to run as
    root, so as root it runs as the ``postgres`` user.
    """

    def __init__(self) -> None:
        # Directly under the temp root: the postgres user must be able to reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="mg-test-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/marketgraph"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
            " -c fsync=off -c max_connections=40"
        )
        # -l: the postmaster must not inherit our pipes, or waiting for pg_ctl never ends.
        log = str(self.directory / "postgres.log")
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )

    @property
    def pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        return int(pid_file.read_text().split()[0])

    def stop(self) -> None:
        """Stop it as an outage would (fast shutdown: sessions are cut), by its PID."""
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while self.pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.pid is None, "the test's PostgreSQL did not stop"

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisProcess:
    """A redis-server of a test's own on a spare port, so a test can stop, freeze and start
    it again (on the same port) without touching the machine's shared Redis."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the Redis fault tests"
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(
            [self._binary, *arguments, "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        self.close()
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop it the way an outage would: the port refuses connections afterwards."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        """Stall it as a hung server would: connections stay open, nothing is answered."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Make sure it is gone (thawed first, in case a test froze it)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


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
            # Not the scheduled tasks' (a market-closing tick each minute): a count that
            # straddled one came out a statement too many.
            if "scheduled_task" not in get_contextvars():
                self.sql.statements.append(statement)

        # The compiled read path sends its statements itself; they count in ``sql`` and, apart,
        # in ``compiled_sql``.
        self.compiled_sql = StatementCounter()
        compiled = self.app.state.compiled_reads
        self.compiles = compiled is not None
        if compiled is not None:
            compiled.listeners.append(self.sql.statements.append)
            compiled.listeners.append(self.compiled_sql.statements.append)

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


async def until_redis_answers(http: httpx.AsyncClient, seconds: float = 30.0) -> None:
    """Wait until the server's breaker has Redis (``/health/ready`` pings it, and an answer
    closes the breaker). A server starting on a loaded machine may time out connecting to
    a redis-server that has just started: a test about an outage must begin from a server
    that reached Redis, not from one whose breaker opened at start. The deadline only
    bounds a hang."""
    deadline = time.monotonic() + seconds
    while True:
        ready = await http.get("/health/ready")
        if ready.status_code == 200 and ready.json()["checks"].get("redis", "ok") == "ok":
            return  # reached, or no Redis configured
        assert time.monotonic() < deadline, f"Redis never answered the server: {ready.text}"
        await asyncio.sleep(0.2)


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


SIGN_UP = """
mutation ($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on SignUpSuccess { user { id } }
    ... on Error { message code }
  }
}
"""
SIGN_IN = """
mutation ($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on SignInSuccess { accessToken refreshToken user { id } }
    ... on Error { message code }
  }
}
"""


async def sign_up_and_in(gql: GraphQLClient, name: str = "Tester") -> Account:
    """Sign a new user up and in through the API."""
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:10]}@example.com"
    data = await gql.data(
        SIGN_UP, {"input": {"email": email, "password": PASSWORD, "displayName": name}}
    )
    assert data["signUp"]["__typename"] == "SignUpSuccess", data
    signed = await gql.data(SIGN_IN, {"input": {"email": email, "password": PASSWORD}})
    assert signed["signIn"]["__typename"] == "SignInSuccess", signed
    return Account(
        id=signed["signIn"]["user"]["id"],
        email=email,
        token=signed["signIn"]["accessToken"],
        refresh_token=signed["signIn"]["refreshToken"],
        password=PASSWORD,
    )


def expect_throttle_status(response: httpx.Response) -> dict[str, Any]:
    """The payload of a request whose fields sign-in or sign-up throttles may have refused.

    A request none of whose root fields ran is 429 with ``Retry-After``; one where
    any ran is 200, its refused fields null with RATE_LIMITED errors.
    """
    payload: dict[str, Any] = response.json()
    data = payload.get("data") or {}
    refused_whole = bool(data) and all(value is None for value in data.values())
    assert response.status_code == (429 if refused_whole else 200), response.text
    if refused_whole:
        assert int(response.headers["Retry-After"]) >= 1
    return payload


def without_extensions(payload: dict[str, Any]) -> dict[str, Any]:
    """A response's data and errors: every response also carries its cost in ``extensions``."""
    return {key: value for key, value in payload.items() if key != "extensions"}


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
