"""Request heads are capped (MAX_HEADER_BYTES) with both of uvicorn's HTTP/1.1 protocols.

uvicorn caps heads only for h11; the httptools protocol it runs by default has no cap,
so the server runs ours (graph/uvicorn_protocol.py). Checked over raw sockets against
live uvicorn servers configured by ``uvicorn_options``.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from graph.app import uvicorn_options
from infra.settings import Settings
from tests.support import LiveServer, free_port

LIMIT = 8192


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(request.headers.get("x-filler", ""))))


class Uvicorn:
    """A tiny app under uvicorn with the server's options, in a thread."""

    def __init__(self, settings: Settings, http: str | None = None) -> None:
        options = uvicorn_options(settings)
        if http is not None:
            options["http"] = http
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=[Route("/", echo)]),
                host="127.0.0.1",
                port=self.port,
                log_level="critical",
                lifespan="off",
                **options,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Uvicorn:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def exchange(port: int, *chunks: bytes) -> bytes:
    """Send ``chunks`` one by one (stopping early if the server closes), return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
            if b"\r\n\r\n" in received and b"connection: close" in received.lower():
                break
            if received.startswith(b"HTTP/1.1 200"):
                break
        return received


def request(filler: int) -> bytes:
    return (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: "
        + b"a" * filler
        + b"\r\nConnection: close\r\n\r\n"
    )


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def limited(settings: Settings) -> Settings:
    return dataclasses.replace(settings, max_header_bytes=LIMIT)


@pytest.fixture(scope="module")
def httptools_server(limited: Settings) -> Iterator[Uvicorn]:
    with Uvicorn(limited) as server:
        yield server


@pytest.fixture(scope="module")
def h11_server(limited: Settings) -> Iterator[Uvicorn]:
    with Uvicorn(limited, http="h11") as server:
        yield server


def test_the_server_runs_the_capped_httptools_protocol(settings: Settings) -> None:
    assert uvicorn_options(settings)["http"] == "graph.uvicorn_protocol:LimitedHttpToolsProtocol"
    assert uvicorn_options(settings)["h11_max_incomplete_event_size"] == settings.max_header_bytes


def test_httptools_serves_a_head_within_the_limit(httptools_server: Uvicorn) -> None:
    response = exchange(httptools_server.port, request(LIMIT - 200))
    assert status(response) == 200
    assert response.endswith(str(LIMIT - 200).encode())


def test_httptools_refuses_a_head_over_the_limit(httptools_server: Uvicorn) -> None:
    response = exchange(httptools_server.port, request(LIMIT + 1))
    assert status(response) == 431
    assert b"connection: close" in response.lower()


def test_httptools_refuses_many_small_headers_over_the_limit(httptools_server: Uvicorn) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(200))  # ~20 KB
    response = exchange(httptools_server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status(response) == 431


def test_httptools_refuses_an_endless_header_before_it_ends(httptools_server: Uvicorn) -> None:
    """10 MB of one header line, never finished: refused once the limit is passed."""
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: "
    response = exchange(httptools_server.port, start, *([b"a" * 4096] * 2560))
    assert status(response) == 431


def test_httptools_keeps_serving_after_a_refusal(httptools_server: Uvicorn) -> None:
    assert status(exchange(httptools_server.port, request(LIMIT * 4))) == 431
    assert status(exchange(httptools_server.port, request(100))) == 200


def test_h11_serves_a_head_within_the_limit(h11_server: Uvicorn) -> None:
    assert status(exchange(h11_server.port, request(LIMIT - 200))) == 200


def test_h11_refuses_a_head_over_the_limit_it_is_still_reading(h11_server: Uvicorn) -> None:
    """h11 checks only what it holds of an unfinished head (a complete head that arrives
    in one read passes); it reports a protocol error, which uvicorn answers with 400."""
    unfinished = request(LIMIT + 1000).removesuffix(b"\r\n")
    assert status(exchange(h11_server.port, unfinished)) == 400


async def test_the_api_refuses_a_huge_head(server: LiveServer) -> None:
    assert status(exchange(server.port, request(server.settings.max_header_bytes + 1))) == 431
    assert status(exchange(server.port, request(1000))) == 404  # served: no route at /
