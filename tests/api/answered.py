"""Which executor answered a request, as the operation's own log line says.

Counting the compiled path's statements does not prove it answered: they are
counted as they are sent, so a statement the database refused (and the
resolvers then answered) would count the same. The per-operation log line
(``graphql.operation``) names the path that produced the response
(``"compiled"``, ``"resolver"`` or ``"cache"``) and the request it belongs to;
the response echoes that request id (``X-Request-ID``). Every in-process test
server logs through the same stdlib logger, so one handler hears them all.

Import the fixture into a test module by assignment (``paths = answered.paths``), or
collect the paths of every operation inside a block with ``recorded(caplog)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest

from tests.support import GraphQLClient, LiveServer

LOGGER = "marketgraph.http"


def _operation_line(record: logging.LogRecord) -> dict[str, Any] | None:
    """The fields of a ``graphql.operation`` log line, or None for any other record."""
    try:
        line = orjson.loads(record.getMessage())
    except orjson.JSONDecodeError:
        return None
    if isinstance(line, dict) and line.get("event") == "graphql.operation":
        return line
    return None


class Paths(logging.Handler):
    """Keeps the path of each operation logged, by request id, until a test asks for it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._paths: dict[str, str | None] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = _operation_line(record)
        if line is not None:
            with self._guard:
                self._paths[line["request_id"]] = line["path"]

    def of(self, response: httpx.Response) -> str | None:
        """The path that answered ``response`` (its log line is written before it is sent)."""
        request_id = response.headers["x-request-id"]
        with self._guard:
            assert request_id in self._paths, f"no log line for request {request_id}"
            return self._paths.pop(request_id)


@pytest.fixture(scope="module")
def paths() -> Iterator[Paths]:
    handler = Paths()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextmanager
def recorded(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The paths of the operations answered inside the block, in order (filled on exit)."""
    caplog.clear()
    paths: list[str] = []
    with caplog.at_level(logging.INFO, logger=LOGGER):
        yield paths
    for record in caplog.records:
        line = _operation_line(record) if record.name == LOGGER else None
        if line is not None:
            paths.append(line["path"])


def expected_path(live: LiveServer) -> str:
    """The path a read-model query takes on ``live``: compiled on PostgreSQL with compiled
    reads on; the embedded default (SQLite) and ``COMPILED_READS=false`` run resolvers."""
    return "compiled" if live.compiles else "resolver"


async def compiled_data(
    client: GraphQLClient,
    live: LiveServer,
    paths: Paths,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    *,
    roots: int,
) -> dict[str, Any]:
    """The ``data`` of a read-model query that must succeed, after checking that the compiled
    path answered it (where the server compiles) with one SQL statement per root field."""
    live.compiled_sql.reset()
    response = await client.post(query, variables, token)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    assert "errors" not in payload, payload["errors"]
    assert paths.of(response) == expected_path(live)
    if live.compiles:
        assert len(live.compiled_sql.statements) == roots, live.compiled_sql.statements
    data: dict[str, Any] = payload["data"]
    return data
