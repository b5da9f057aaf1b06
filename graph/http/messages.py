"""The HTTP request and response as the GraphQL endpoint handles them: read from and written
to the ASGI messages directly.

Starlette's ``Request`` and ``Response`` did the same job for this one endpoint at about
7 µs a request (a ``Headers`` mapping that lowercases, encodes and scans on every lookup;
a response that rebuilds its header list): a tenth of a cache hit's CPU. Here the request
headers are read once, the first of each name as Starlette would, and a reply's headers
are encoded once, as uvicorn sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send

JSON = "application/json"


class HttpRequest:
    """One request to the endpoint: its method, headers, client and query string (the body
    is read from ``receive``, ``graph.http.protocol.request_source``)."""

    __slots__ = ("_headers", "_query", "method", "receive", "request_id", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        # The first of a repeated header counts, as with Starlette's Headers.get: built from
        # the last to the first, the first one's value is the one left.
        self._headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        self._query: QueryParams | None = None
        # Given by the edge middleware (``graph.middleware.Edge``), or by the endpoint at the
        # edge (``GraphQLEndpoint.at_edge``).
        state = scope.get("state")
        self.request_id: str = str(state.get("request_id", "")) if state else ""

    def header(self, name: bytes) -> str | None:
        """The value of header ``name`` (lowercase, as ASGI gives names), or None."""
        value = self._headers.get(name)
        return None if value is None else value.decode("latin-1")

    def has_header(self, name: bytes) -> bool:
        return name in self._headers

    @property
    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    @property
    def query_string(self) -> bytes:
        query: bytes = self.scope["query_string"]
        return query

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope["query_string"])
        return self._query


class Reply:
    """A whole response: status, headers as uvicorn sends them (lowercase names, bytes), body.

    Like Starlette's ``Response``: ``content-length`` unless the status has no body, and
    ``content-type`` (``charset=utf-8`` for text) when ``media_type`` is given.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        media_type: str | None = JSON,
        headers: Mapping[str, str] | None = None,
        raw: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """``headers`` by name and value; ``raw`` already as uvicorn sends them (the
        endpoint's own headers, encoded once per value rather than on every response)."""
        self.status = status
        self.body = body
        pairs = (
            [(_encoded_name(name), value.encode("latin-1")) for name, value in headers.items()]
            if headers
            else []
        )
        if raw:
            pairs += raw
        if status >= 200 and status not in (204, 304):
            pairs.append((b"content-length", str(len(body)).encode()))
        if media_type is not None:
            pairs.append((b"content-type", _content_type(media_type)))
        self.headers = pairs

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None: for logs and tests."""
        wanted = name.lower().encode("latin-1")
        return next((value.decode("latin-1") for key, value in self.headers if key == wanted), None)

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


@lru_cache(maxsize=64)
def _encoded_name(name: str) -> bytes:
    """A header name as uvicorn sends it; the endpoint uses a dozen names, each on every
    cache hit."""
    return name.lower().encode("latin-1")


@lru_cache(maxsize=16)
def _content_type(media_type: str) -> bytes:
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return media_type.encode("latin-1")
