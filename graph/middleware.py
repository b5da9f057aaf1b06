"""ASGI middleware of the HTTP edge: CORS, request ids and request counting."""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Collection

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What a browser app needs to call the API: the bearer token, JSON bodies, our request
# ids, and Apollo Client's client-awareness headers.
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "X-Request-ID",
    "apollographql-client-name",
    "apollographql-client-version",
)
# What a browser app may read from a response besides the safelisted headers.
CORS_EXPOSED_HEADERS = (
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
# Browsers cap the preflight cache (Chromium at 2 hours); 10 minutes keeps a policy
# change quick to take effect.
CORS_MAX_AGE = 600
LOCALHOST_ORIGIN = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?"
GRAPHQL_PATH = "/graphql"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class AllowedOriginsCORS(CORSMiddleware):
    """Starlette's CORS middleware, applied only to requests from allowed origins.

    Starlette adds ``Access-Control-Expose-Headers`` to every response to a request
    with an ``Origin``, and preflight headers to refused preflights. Here a request from
    any other origin bypasses CORS entirely: its responses carry no CORS header at all,
    so its preflight reaches the endpoint and gets the endpoint's 405.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self.is_allowed_origin(origin):

                async def vary_on_origin(message: Message) -> None:
                    # Caches must not hand this answer to an allowed origin, nor theirs to it.
                    if message["type"] == "http.response.start":
                        headers = MutableHeaders(scope=message)
                        headers.add_vary_header("Origin")
                    await send(message)

                await self.app(scope, receive, vary_on_origin)
                return
        await super().__call__(scope, receive, send)


def cors(app: ASGIApp, origins: Collection[str], localhost: bool) -> ASGIApp:
    """CORS for ``origins`` (exact, or ``*``), plus any localhost port when ``localhost``.

    Credentials (cookies, HTTP authentication) are never allowed: the API authenticates
    with a bearer token in ``Authorization``, which a cross-origin request may send
    without them.
    """
    if not origins and not localhost:
        return app
    return AllowedOriginsCORS(
        app,
        allow_origins=tuple(origins),
        allow_origin_regex=LOCALHOST_ORIGIN if localhost else None,
        allow_methods=("GET", "POST"),
        allow_headers=CORS_REQUEST_HEADERS,
        allow_credentials=False,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE,
    )


class RequestIds:
    """Request ids: the client's ``X-Request-ID`` when it is sane, else a new one."""

    def __init__(self) -> None:
        # Unique across processes without a system call per request: a random prefix
        # per process, then a counter.
        self._prefix = secrets.token_hex(6)
        self._next = itertools.count(1)

    def assign(self, given: str | None) -> str:
        if given and _REQUEST_ID.fullmatch(given):
            return given
        return f"{self._prefix}{next(self._next):08x}"


class Edge:
    """The outermost middleware of our own: request ids, request counting, and the
    GraphQL endpoint's short way in.

    Takes ``X-Request-ID`` from the client when it is sane, else makes one, and echoes
    it back; reports every HTTP response as (route, status), paths not routed counting
    as ``other``. ``/graphql`` goes straight to ``graphql`` (the endpoint, behind CORS
    when that is configured) rather than through Starlette's router and per-request
    wrappers: it is the path nearly every request takes, and on a benchmark query that
    layering was an eighth of the server's CPU.

    ``graphql_at_edge``, when given, takes ``/graphql`` requests instead: the endpoint
    doing this middleware's job for its own responses (``GraphQLEndpoint.at_edge``,
    behind CORS when that is configured), as wrapping every response's ``send`` in a
    closure of ours cost a cache hit a tenth of what our code spends on it. ``OPTIONS``
    still goes the long way: CORS answers preflights itself, without the endpoint.
    """

    def __init__(
        self,
        app: ASGIApp,
        graphql: ASGIApp,
        routes: Collection[str],
        observe: Callable[[str, int], None],
        ids: RequestIds | None = None,
        *,
        graphql_at_edge: ASGIApp | None = None,
    ) -> None:
        self.app = app
        self._graphql = graphql
        self._graphql_at_edge = graphql_at_edge
        self._routes = frozenset(routes)
        self._prefixes = tuple(route for route in routes if route.endswith("/"))
        self._observe = observe
        self._ids = ids or RequestIds()

    def _route(self, path: str) -> str:
        if path in self._routes:
            return path
        return next((prefix for prefix in self._prefixes if path.startswith(prefix)), "other")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        at_edge = self._graphql_at_edge
        if at_edge is not None and path == GRAPHQL_PATH and scope["method"] != "OPTIONS":
            await at_edge(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = self._ids.assign(given)
        scope.setdefault("state", {})["request_id"] = request_id
        route = self._route(path)
        identifier = request_id.encode()

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", identifier)]
                self._observe(route, int(message["status"]))
            await send(message)

        await (self._graphql if path == GRAPHQL_PATH else self.app)(scope, receive, answer)
