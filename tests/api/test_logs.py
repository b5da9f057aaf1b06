"""With LOG_FORMAT=json every line the server writes, whoever writes it, is one JSON object."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.serving import ServeProcess
from tests.support import free_port

OPERATIONS = [
    {"query": "query TopMarkets { markets(first: 2) { totalCount } }"},
    {"query": "{ markets(first: 1) { totalCount } }"},
    {"query": "{ markets(first: 1) { "},  # does not parse
    {"query": "{ noSuchField }"},  # does not validate
]


@pytest.fixture(scope="module")
def finished_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ServeProcess, int]:
    """A two-worker server with Redis unreachable, exercised, then stopped; and its status."""
    server = ServeProcess(
        tmp_path_factory.mktemp("logs"),
        "--workers",
        "2",
        wait_for="/health",
        DATABASE_URL=settings.database_url,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        JWT_SECRET=settings.jwt_secret,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        DB_POOL_SIZE="2",
    )
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for body in OPERATIONS:
                assert client.post("/graphql", json=body).status_code == 200
            bad_token = client.post(
                "/graphql", json=OPERATIONS[0], headers={"Authorization": "Bearer nonsense"}
            )
            assert bad_token.status_code == 401
            assert client.get("/no/such/path").status_code == 404
            # Ready all the same: limits hold in process while Redis is away.
            assert client.get("/health/ready").status_code == 200
            assert client.get("/graphql", headers={"accept": "text/html"}).status_code == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 431")
    finally:
        status = server.stop()
    return server, status


def decoded(lines: list[str]) -> list[dict[str, Any]]:
    objects = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"not JSON: {line!r}") from None
        assert isinstance(value, dict), line
        objects.append(value)
    return objects


def test_every_line_is_a_json_object(finished_server: tuple[ServeProcess, int]) -> None:
    server, status = finished_server
    assert status in (0, 143), status  # a graceful stop on SIGTERM
    lines = decoded(server.stderr_lines() + server.stdout_lines())
    assert len(lines) > 10
    for line in lines:
        assert {"event", "level", "timestamp"} <= set(line), line


def test_uvicorn_lines_are_among_them(finished_server: tuple[ServeProcess, int]) -> None:
    server, _status = finished_server
    events = [line["event"] for line in decoded(server.stderr_lines())]
    assert any(e.startswith("Uvicorn running on") for e in events)
    assert any(e.startswith("Started parent process") for e in events)
    assert sum(e.startswith("Started server process") for e in events) == 2
    assert any(e.startswith("Finished server process") for e in events)


def test_the_start_up_line_says_where_and_warns_about_redis(
    finished_server: tuple[ServeProcess, int],
) -> None:
    server, _status = finished_server
    lines = decoded(server.stderr_lines())
    (starting,) = [line for line in lines if line["event"] == "server.starting"]
    assert starting["level"] == "warning"
    assert starting["url"] == f"http://127.0.0.1:{server.port}/graphql"
    assert starting["environment"] == "development"
    assert starting["database"] == "postgresql"
    assert starting["redis"] == "unreachable"
    assert starting["workers"] == 2
    workers = [line for line in lines if line["event"] == "app.started"]
    assert len(workers) == 2
    assert {line["redis"] for line in workers} == {"unreachable"}
    assert {line["level"] for line in workers} == {"warning"}
    assert len({line["pid"] for line in workers}) == 2


def test_each_operation_logs_one_line(finished_server: tuple[ServeProcess, int]) -> None:
    server, _status = finished_server
    operations = [
        line for line in decoded(server.stderr_lines()) if line["event"] == "graphql.operation"
    ]
    assert len(operations) == len(OPERATIONS) + 1  # and the one with a bad token
    assert {line["status"] for line in operations} == {200, 401}
    assert [line["operation_name"] for line in operations].count("TopMarkets") == 2


def test_console_format_is_for_people(tmp_path: Path) -> None:
    """The other format is not JSON: the setting is what makes the difference."""
    with ServeProcess(tmp_path, LOG_FORMAT="console") as server:
        pass
    lines = server.stderr_lines()
    assert lines
    assert not any(line.startswith("{") for line in lines)
