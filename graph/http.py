"""GraphQL over HTTP (the GraphQL-over-HTTP specification), on Starlette.

Written out rather than taken from Strawberry's view so that every status
code, media type and malformed-request answer is ours to decide:

* POST with ``application/json`` always; GET for queries only (a mutation over
  GET is 405 with ``Allow: POST``); any other method is 405 with ``Allow: GET, POST``.
* ``application/graphql-response+json`` when the client accepts it: 400 for a
  malformed request, an unparseable document or variables that do not fit
  their types, 422 when the document fails validation, 200 once execution has
  started. Plain ``application/json`` answers 200 for a well-formed request
  (unparseable or invalid documents included), as the spec asks for legacy
  clients, and 400 for a malformed one.
* With either media type, a request whose operation cannot be chosen (an
  ``operationName`` the document lacks, several operations and no name, a
  subscription) is 400: no legacy client expects a 200 there.
* 413 over the body limit, 415 for another content type, 406 when the client
  accepts neither JSON media type, 401 for a bad bearer token.
* Every error carries ``extensions.code``; request errors have no ``data``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.http.ides import get_graphql_ide_html
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType as StrawberryOperationType

from graph.context import Context, Services
from graph.documents import parse_document
from graph.errors import INTERNAL_MESSAGE, ApiError, ErrorCode
from graph.loaders import Loaders
from infra.metrics import OPERATION_SECONDS, OPERATIONS
from infra.tokens import AccessClaims, InvalidToken, JwtTokens

log = structlog.get_logger("marketgraph.http")

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
# Routed here rather than left to Starlette so that a 405 carries an error code too.
ROUTED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Which operations may run is decided before execution (GET: queries only).
ALLOWED_OPERATIONS = (StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION)


class RequestFailed(Exception):
    """The HTTP request cannot be run as a GraphQL operation."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        headers: Mapping[str, str] | None = None,
        locations: list[dict[str, int]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.locations = locations

    def body(self) -> bytes:
        error: dict[str, Any] = {"message": self.message}
        if self.locations:
            error["locations"] = self.locations
        error["extensions"] = {"code": self.code.value}
        return orjson.dumps({"errors": [error]})


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


def _media_type(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when we can give none it accepts."""
    if not accept:
        return JSON
    offered = {}
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        offered[kind.strip().lower()] = quality
    if offered.get(GRAPHQL_RESPONSE, 0) > 0:
        return GRAPHQL_RESPONSE
    if any(offered.get(k, 0) > 0 for k in (JSON, "application/*", "*/*")):
        return JSON
    return None


def _loads(raw: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        detail = str(error)
        if "depth limit" in detail or "recursion" in detail.lower():
            reason = "nested too deeply"
        elif "UTF-8" in detail:
            reason = "not valid UTF-8"
        else:
            reason = f"not valid JSON ({detail})"
        raise RequestFailed(400, ErrorCode.BAD_REQUEST, f"The {what} is {reason}.") from None


def _graphql_request(payload: Any) -> GraphQLRequest:
    if not isinstance(payload, dict):
        raise RequestFailed(400, ErrorCode.BAD_REQUEST, "The request body must be a JSON object.")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestFailed(400, ErrorCode.BAD_REQUEST, "'query' must be a non-empty string.")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestFailed(400, ErrorCode.BAD_REQUEST, "'variables' must be a JSON object.")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestFailed(400, ErrorCode.BAD_REQUEST, "'operationName' must be a string.")
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestFailed(400, ErrorCode.BAD_REQUEST, "'extensions' must be a JSON object.")
    return GraphQLRequest(query, variables, operation_name or None)


def _request_error(result: ExecutionResult) -> bool:
    """Execution never started: the variables did not fit their types.

    graphql-core reports that as ``data: null`` with errors that have no path;
    a field error that nulls the whole result always has one.
    """
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


class GraphQLEndpoint:
    def __init__(
        self,
        schema: Any,
        services: Services,
        tokens: JwtTokens,
        max_body_bytes: int,
        graphiql: bool,
    ) -> None:
        self._schema = schema
        self._services = services
        self._tokens = tokens
        self._max_body = max_body_bytes
        self._graphiql = graphiql
        self._graphiql_html = get_graphql_ide_html(graphql_ide="graphiql") if graphiql else ""

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id: str = request.state.request_id
        media = _media_type(request.headers.get("accept"))
        operation: dict[str, Any] = {"name": None, "type": None}
        context: Context | None = None
        try:
            if request.method not in ("GET", "POST"):
                raise RequestFailed(
                    405, ErrorCode.BAD_REQUEST, "Use GET or POST.", {"Allow": "GET, POST"}
                )
            if request.method == "GET" and self._wants_graphiql(request):
                return HTMLResponse(self._graphiql_html)
            if media is None:
                raise RequestFailed(
                    406, ErrorCode.BAD_REQUEST, f"Accept {JSON} or {GRAPHQL_RESPONSE}."
                )
            gql = await self._read(request)
            document = self._document(gql)
            chosen = self._operation(document, gql, request.method)
            operation.update(
                name=chosen.name.value if chosen.name else None, type=chosen.operation.value
            )
            context = Context(
                request_id=request_id,
                services=self._services,
                loaders=Loaders(self._services.readers),
                claims=self._claims(request),
                client_ip=request.client.host if request.client else None,
            )
            await self._authenticate(context)
            result = await self._schema.execute(
                gql.query,
                variable_values=gql.variables,
                context_value=context,
                operation_name=gql.operation_name,
                allowed_operation_types=ALLOWED_OPERATIONS,
            )
            status = self._status(result, media)
            outcome = (
                "internal_error"
                if context.internal_errors
                else ("errors" if result.errors else "ok")
            )
            body = self._body(result)
            response = Response(body, status_code=status, media_type=media)
        except RequestFailed as failure:
            outcome = "rejected"
            if failure.code is ErrorCode.GRAPHQL_PARSE_FAILED and media == JSON:
                # Legacy application/json clients get 200 for any well-formed HTTP request.
                failure.status = 200
            response = Response(
                failure.body(),
                status_code=failure.status,
                media_type=media or JSON,
                headers=failure.headers,
            )
        except Exception:
            # A fault outside the resolvers (the identity lookup, say): the same masked,
            # coded answer as one inside them, never a bare 500 page.
            outcome = "internal_error"
            log.exception("graphql.request_failed", request_id=request_id)
            response = Response(
                orjson.dumps(
                    {
                        "errors": [
                            {
                                "message": INTERNAL_MESSAGE,
                                "extensions": {
                                    "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                                    "requestId": request_id,
                                },
                            }
                        ]
                    }
                ),
                status_code=500,
                media_type=media or JSON,
            )
        elapsed = time.perf_counter() - started
        OPERATIONS.labels(operation["type"] or "none", outcome).inc()
        OPERATION_SECONDS.labels(operation["type"] or "none").observe(elapsed)
        log.info(
            "graphql.operation",
            request_id=request_id,
            operation_name=operation["name"],
            operation_type=operation["type"],
            duration_ms=round(elapsed * 1000, 3),
            outcome=outcome,
            status=response.status_code,
            viewer_id=str(context.viewer_id) if context and context.viewer_id else None,
        )
        return response

    def _wants_graphiql(self, request: Request) -> bool:
        return (
            self._graphiql
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def _read(self, request: Request) -> GraphQLRequest:
        if request.method == "GET":
            params = request.query_params
            if "query" not in params:
                raise RequestFailed(400, ErrorCode.BAD_REQUEST, "Pass the document as 'query'.")
            raw_variables = params.get("variables")
            return _graphql_request(
                {
                    "query": params.get("query"),
                    "variables": _loads(raw_variables, "'variables' parameter")
                    if raw_variables
                    else None,
                    "operationName": params.get("operationName"),
                }
            )
        content_type = request.headers.get("content-type", "")
        kind, _, params_text = content_type.partition(";")
        if kind.strip().lower() != JSON:
            raise RequestFailed(
                415, ErrorCode.BAD_REQUEST, f"Send the request as {JSON}.", {"Accept-Post": JSON}
            )
        charset = params_text.strip().lower().removeprefix("charset=").strip('"')
        if charset and charset != "utf-8":
            raise RequestFailed(
                415, ErrorCode.BAD_REQUEST, "Only UTF-8 request bodies are accepted."
            )
        return _graphql_request(_loads(await self._body_bytes(request), "request body"))

    async def _body_bytes(self, request: Request) -> bytes:
        too_large = RequestFailed(
            413, ErrorCode.BAD_REQUEST, f"The request body exceeds {self._max_body} bytes."
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _document(gql: GraphQLRequest) -> DocumentNode:
        try:
            return parse_document(gql.query)
        except GraphQLError as error:
            locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
            raise RequestFailed(
                400, ErrorCode.GRAPHQL_PARSE_FAILED, error.message, locations=locations
            ) from None

    @staticmethod
    def _operation(
        document: DocumentNode, gql: GraphQLRequest, method: str
    ) -> OperationDefinitionNode:
        operation = get_operation_ast(document, gql.operation_name)
        if operation is None:
            message = (
                f"No operation named '{gql.operation_name}' in the document."
                if gql.operation_name
                else "The document has several operations: name one in 'operationName'."
            )
            raise RequestFailed(400, ErrorCode.BAD_REQUEST, message)
        if operation.operation is OperationType.SUBSCRIPTION:
            raise RequestFailed(
                400, ErrorCode.BAD_REQUEST, "Subscriptions are served over WebSocket."
            )
        if method == "GET" and operation.operation is not OperationType.QUERY:
            raise RequestFailed(
                405, ErrorCode.BAD_REQUEST, "Send mutations with POST.", {"Allow": "POST"}
            )
        return operation

    def _claims(self, request: Request) -> AccessClaims | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestFailed(
                401,
                ErrorCode.UNAUTHENTICATED,
                "Send the access token as 'Authorization: Bearer <token>'.",
                {"WWW-Authenticate": 'Bearer realm="marketgraph"'},
            )
        try:
            return self._tokens.decode_access(token.strip())
        except InvalidToken:
            raise RequestFailed(
                401,
                ErrorCode.UNAUTHENTICATED,
                "The access token is invalid or expired.",
                {"WWW-Authenticate": 'Bearer realm="marketgraph", error="invalid_token"'},
            ) from None

    @staticmethod
    async def _authenticate(context: Context) -> None:
        """A well-signed token must also still stand: user enabled, session open, version current.

        Checked before execution (one statement), so revoked credentials get the
        same 401 as forged ones instead of partial data.
        """
        if context.claims is None:
            return
        try:
            await context.actor()
        except ApiError as error:
            raise RequestFailed(
                401,
                ErrorCode.UNAUTHENTICATED,
                error.message,
                {"WWW-Authenticate": 'Bearer realm="marketgraph", error="invalid_token"'},
            ) from None

    @staticmethod
    def _status(result: ExecutionResult, media: str) -> int:
        if media != GRAPHQL_RESPONSE:
            return 200
        if isinstance(result, PreExecutionError):
            return 422
        return 400 if _request_error(result) else 200

    @staticmethod
    def _body(result: ExecutionResult) -> bytes:
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        if not isinstance(result, PreExecutionError) and not _request_error(result):
            payload["data"] = result.data
        if result.extensions:
            payload["extensions"] = result.extensions
        return orjson.dumps(payload)
