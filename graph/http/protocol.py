"""GraphQL over HTTP (the GraphQL-over-HTTP specification): what a request is, what status it gets.

Written out rather than taken from Strawberry's view so that every status
code, media type and malformed-request answer is ours to decide:

* POST with ``application/json`` always; GET for queries only (a mutation over
  GET is 405 with ``Allow: POST``); any other method is 405 with ``Allow: GET, POST``.
* ``application/graphql-response+json`` when the client accepts it: 400 for a
  malformed request, an unparseable document, variables that do not fit their
  types or a document over a limit; 422 when the document fails validation;
  200 once execution has started. Plain ``application/json`` answers 200 for a
  well-formed request (unparseable, invalid or refused documents included), as
  the spec asks for legacy clients, and 400 for a malformed one.
* With either media type, a request whose operation cannot be chosen (an
  ``operationName`` the document lacks, several operations and no name, a
  subscription) is 400: no legacy client expects a 200 there.
* 413 over the body limit, 415 for another content type, 406 when the client
  accepts neither JSON media type, 401 for a bad bearer token, 429 when the
  client's budget cannot pay for the operation, 503 when what the operation
  needs is unreachable.
* Every error carries ``extensions.code``; request errors have no ``data``, and the
  edge adds the response's ``extensions.cost`` (``graph.http.endpoint``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import ClientDisconnect

from graph.errors import ErrorCode
from graph.http.messages import JSON, HttpRequest

GRAPHQL_RESPONSE = "application/graphql-response+json"
# Routed here rather than left to Starlette so that a 405 carries an error code too.
ROUTED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# An operation name is echoed in logs and errors; a longer one is refused, and what is
# echoed of a refused one is this long at most.
ECHOED_NAME_CHARS = 40


class RequestFailed(Exception):
    """The HTTP request cannot be run as a GraphQL operation; nothing was executed.

    ``legacy_ok`` marks failures that plain ``application/json`` clients get
    with status 200 (a document that does not parse, validate or fit the limits).
    """

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        headers: Mapping[str, str] | None = None,
        locations: list[dict[str, int]] | None = None,
        extensions: Mapping[str, Any] | None = None,
        legacy_ok: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.locations = locations
        self.extensions = dict(extensions or {})
        self.legacy_ok = legacy_ok

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.locations:
            error["locations"] = self.locations
        error["extensions"] = {"code": self.code.value, **self.extensions}
        return error

    def errors(self) -> list[dict[str, Any]]:
        return [self.error()]

    def status_for(self, media: str | None) -> int:
        if self.legacy_ok and media != GRAPHQL_RESPONSE:
            return 200
        return self.status


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any]
    # A registered document's id instead of the text (``documentId``, or Relay's ``doc_id``).
    document_id: str | None = None


@lru_cache(maxsize=256)
@lru_cache(maxsize=256)
def media_type(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when we can give none it accepts.

    Kept by header: clients send the same few ``Accept`` values on every request."""
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


def bad_request(message: str, status: int = 400, **headers: str) -> RequestFailed:
    return RequestFailed(status, ErrorCode.BAD_REQUEST, message, headers)


def over_limit(
    limit: str, maximum: int, measured: int, message: str, status: int = 400
) -> RequestFailed:
    """A request over a size limit: ``BAD_REQUEST`` naming the limit, its value and the
    measured one, as ``QUERY_TOO_COMPLEX`` names a document's."""
    return RequestFailed(
        status,
        ErrorCode.BAD_REQUEST,
        message,
        extensions={"limit": limit, "maximum": maximum, "measured": measured},
    )


def _loads(raw: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        detail = str(error)
        if "depth limit" in detail or "recursion" in detail.lower():
            reason = "nested too deeply"
        elif "UTF-8" in detail or "utf-8" in detail:
            reason = "not valid UTF-8"
        else:
            reason = f"not valid JSON ({detail[:200]})"
        raise bad_request(f"The {what} is {reason}.") from None


def shown_name(name: str) -> str:
    """What an error message may echo of a client's operation name."""
    return name if len(name) <= ECHOED_NAME_CHARS else name[:ECHOED_NAME_CHARS] + "…"


def _graphql_request(payload: Any, max_operation_name: int) -> GraphQLRequest:
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object (batches are not accepted).")
    query = payload.get("query")
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise bad_request("'extensions' must be a JSON object.")
    if query is not None and not isinstance(query, str):
        raise bad_request("'query' must be a string.")
    if query is not None and not query.strip():
        raise bad_request("'query' must be a non-empty string.")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise bad_request("'variables' must be a JSON object.")
    document_id = payload.get("documentId", payload.get("doc_id"))
    if document_id is not None and (not isinstance(document_id, str) or not document_id):
        raise bad_request("'documentId' must be a non-empty string.")
    if document_id is not None and query is not None:
        raise bad_request("Send either 'query' or 'documentId', not both.")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise bad_request("'operationName' must be a string.")
    if operation_name and len(operation_name) > max_operation_name:
        raise over_limit(
            "operationNameChars",
            max_operation_name,
            len(operation_name),
            f"'operationName' may be at most {max_operation_name} characters"
            f" ('{shown_name(operation_name)}' is longer).",
        )
    return GraphQLRequest(
        query, variables, operation_name or None, extensions or {}, document_id or None
    )


async def request_source(request: HttpRequest, max_body: int) -> bytes:
    """The bytes a GraphQL request comes in: a GET's query string, a POST's JSON body (its
    content type and size checked). Equal bytes with the same method are the same request."""
    if request.method == "GET":
        return request.query_string
    refusal = _content_refusal(request.header(b"content-type") or "")
    if refusal is _NOT_JSON:
        raise bad_request(f"Send the request as {JSON}.", 415, **{"Accept-Post": JSON})
    if refusal is _NOT_UTF8:
        raise bad_request("Only UTF-8 request bodies are accepted.", 415)
    return await _body_bytes(request, max_body)


_NOT_JSON = "not JSON"
_NOT_UTF8 = "not UTF-8"


@lru_cache(maxsize=256)
def _content_refusal(content_type: str) -> str | None:
    """Why a POST body of ``content_type`` is refused, or None (kept by header, as
    ``media_type``)."""
    kind, _, params_text = content_type.partition(";")
    if kind.strip().lower() != JSON:
        return _NOT_JSON
    charset = params_text.strip().lower().removeprefix("charset=").strip('"')
    if charset and charset != "utf-8":
        return _NOT_UTF8
    return None


def parse_request(request: HttpRequest, source: bytes, max_operation_name: int) -> GraphQLRequest:
    """The GraphQL request in ``source`` (``request_source``): GET parameters or a JSON body."""
    if request.method == "GET":
        params = request.query_params
        raw_variables = params.get("variables")
        raw_extensions = params.get("extensions")
        return _graphql_request(
            {
                "query": params.get("query"),
                "variables": _loads(raw_variables, "'variables' parameter")
                if raw_variables
                else None,
                "operationName": params.get("operationName"),
                "extensions": _loads(raw_extensions, "'extensions' parameter")
                if raw_extensions
                else None,
                "documentId": params.get("documentId", params.get("doc_id")),
            },
            max_operation_name,
        )
    return _graphql_request(_loads(source, "request body"), max_operation_name)


async def _body_bytes(request: HttpRequest, max_body: int) -> bytes:
    declared = request.header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise _too_large(max_body, int(declared))
    # Straight from the ASGI messages: a body almost always comes in one, and Starlette's
    # stream generator costs more than the read itself.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            # Read no further: the measured size is what came in until then.
            raise _too_large(max_body, size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(max_body: int, measured: int) -> RequestFailed:
    return over_limit(
        "bodyBytes", max_body, measured, f"The request body exceeds {max_body} bytes.", 413
    )


def encode(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps(payload)


def failure_body(failure: RequestFailed, extensions: Mapping[str, Any] | None = None) -> bytes:
    if extensions is None:
        return encode({"errors": failure.errors()})
    return encode({"errors": failure.errors(), "extensions": extensions})
