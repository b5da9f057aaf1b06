"""The endpoint's own request and reply (graph.http.messages) read and write what Starlette's
would have."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from graph.http.messages import HttpRequest, Reply

HEADERS = [
    (b"accept", b"application/json"),
    (b"authorization", b"Bearer first"),
    (b"authorization", b"Bearer second"),
    (b"x-odd", "caf\u00e9".encode("latin-1")),
]


async def nothing() -> Any:
    raise AssertionError("the body is not read here")


def scope(**extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "headers": HEADERS,
        "query_string": b"query=%7B+a+%7D&variables=%7B%7D",
        "client": ("203.0.113.9", 5555),
        "state": {"request_id": "abc"},
        **extra,
    }


def test_the_request_reads_headers_as_starlette_does() -> None:
    ours, theirs = HttpRequest(scope(), nothing), Request(scope(), nothing)
    for name in ("accept", "authorization", "x-odd", "content-type"):
        assert ours.header(name.encode()) == theirs.headers.get(name), name
    assert ours.header(b"authorization") == "Bearer first"
    assert ours.has_header(b"authorization")
    assert not ours.has_header(b"content-type")
    assert ours.query_params == theirs.query_params
    assert ours.query_params["query"] == "{ a }"
    assert ours.client_ip == "203.0.113.9"
    assert ours.request_id == "abc"
    assert HttpRequest(scope(client=None), nothing).client_ip is None


def test_a_reply_carries_the_headers_a_starlette_response_would() -> None:
    cases: list[tuple[bytes, int, str | None, dict[str, str]]] = [
        (b'{"data":{}}', 200, "application/json", {"ETag": 'W/"x"', "Vary": "Accept"}),
        (b"<html></html>", 200, "text/html", {}),
        (b"", 304, None, {"ETag": 'W/"x"', "Cache-Control": "private, max-age=5"}),
        (b"{}", 429, "application/graphql-response+json", {"Retry-After": "3"}),
    ]
    for body, status, media, headers in cases:
        ours = Reply(body, status, media, headers)
        theirs = Response(body, status_code=status, media_type=media, headers=headers)
        assert sorted(ours.headers) == sorted(theirs.raw_headers), (status, media)
        assert ours.body == theirs.body
    assert Reply(b"abc").header("Content-Length") == "3"
    assert Reply(b"", 304, None).header("content-length") is None
