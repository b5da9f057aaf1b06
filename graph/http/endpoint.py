"""The GraphQL endpoint: one request from bytes to response, in the order that keeps it cheap.

1. Read the HTTP request (``graph.http.protocol``).
2. Prepare the document once (``graph.documents``): parse, analyse, validate;
   a document over a limit is refused here, before validation walks it.
3. Choose the operation, coerce its variables, and compute its requested cost
   (``graph.analysis``); an operation over the cost limit is refused.
4. Authenticate (``graph.http.auth``).
5. Take the cost from the client's budget (``graph.budgets``; a client that
   cannot pay gets 429 and nothing runs), its command sent with the response
   cache's lookup (``graph.caching``), so a hit waits for one round trip to
   Redis. Answer from the cache, or execute (compiled, else
   ``graph.execution``) and measure the actual cost of what came back; either
   way the difference is refunded (a hit's without waiting for Redis). Answer
   with the cost, budget and cache status in ``extensions`` and the
   ``RateLimit-*`` and HTTP caching headers (304 for a GET whose
   ``If-None-Match`` still holds).

The document itself may come by hash or id (``graph.persisted``: APQ and
trusted documents) instead of as text.

Every request logs one line and counts once in the metrics, whatever its fate.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from graphql import GraphQLError, GraphQLSchema, OperationType
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import VariableValues
from starlette.types import Receive, Scope, Send

from domain.ports import AccessClaims, CompiledReads
from graph.analysis import (
    OperationFigures,
    PageSizeOutOfRange,
    RequestedCosts,
    actual_cost,
    explain,
)
from graph.budgets import UNLIMITED, Allowance, BudgetGate
from graph.cache_policy import CacheHints
from graph.caching import (
    CacheSettings,
    CacheStatus,
    ResponseCache,
    cache_headers,
    key_scope,
    matches,
)
from graph.compiled import CompiledOperation, Planner, bind
from graph.context import Context, Services
from graph.documents import DocumentRefused, Documents, Prepared
from graph.errors import INTERNAL_MESSAGE, ErrorCode
from graph.execution import Executed, OutageCheck, run_operation
from graph.graphiql import graphiql_html
from graph.http import auth
from graph.http.memo import Planned, RequestMemo
from graph.http.messages import JSON, HttpRequest, Reply
from graph.http.protocol import (
    GRAPHQL_RESPONSE,
    GraphQLRequest,
    RequestFailed,
    bad_request,
    encode,
    failure_body,
    media_type,
    parse_request,
    request_source,
    shown_name,
)
from graph.middleware import RequestIds
from graph.persisted import Document, PersistedDocuments, PersistedError, Registry
from graph.variables import Variables

log = structlog.get_logger("marketgraph.http")

# What a client is told to wait before retrying when a dependency is down.
OUTAGE_RETRY_AFTER_SECONDS = 5

# An operation's name, kind, outcome and seconds, and its HTTP status when the endpoint
# was the edge (``infra.metrics.observe_operation``).
Observe = Callable[[str | None, str | None, str, float, int | None], None]


def _ignore(
    _name: str | None, _kind: str | None, _outcome: str, _seconds: float, _status: int | None
) -> None:
    return None


def _nothing() -> None:
    return None


@dataclass(slots=True)
class _Log:
    """What the operation's log line says about it."""

    name: str | None = None
    kind: str | None = None
    outcome: str = "ok"
    requested: int | None = None
    actual: int | None = None
    # Which executor ran it: "compiled" (one SQL statement per root field) or "resolver";
    # "cache" for a response cache hit.
    path: str | None = None
    cache: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """What an executor produced: the response without ``extensions`` (``graph.caching``)."""

    body: bytes
    data: dict[str, Any] | None
    actual: int
    cacheable: bool
    outcome: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # What the budget said when the cost was taken, for the refund.
    allowance: Allowance = UNLIMITED


class _Refused(Exception):
    """The client's budget cannot pay for the operation: nothing ran."""

    def __init__(self, allowance: Allowance) -> None:
        super().__init__("budget")
        self.allowance = allowance


class _Outage(Exception):
    """What the operation needs is unreachable; carries the error the edge reports."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Outages:
    """Logs and counts an outage once when it starts, and logs it once when it ends, not per
    request.

    Each request answered 503 still counts, with its outcome ``unavailable``, in the
    operation metrics.
    """

    def __init__(self, started: Callable[[], None]) -> None:
        self._since: float | None = None
        self._started = started

    def failed(self, request_id: str, error: BaseException) -> None:
        if self._since is None:
            self._since = time.monotonic()
            log.warning("dependency.unavailable", request_id=request_id, error=type(error).__name__)
            self._started()

    def served(self) -> None:
        if self._since is not None:
            log.info("dependency.available", after_seconds=round(time.monotonic() - self._since, 3))
            self._since = None


class GraphQLEndpoint:
    def __init__(
        self,
        schema: GraphQLSchema,
        documents: Documents,
        services: Services,
        decode_access: Callable[[str], AccessClaims],
        is_outage: OutageCheck,
        budgets: BudgetGate,
        *,
        max_body_bytes: int,
        graphiql: bool,
        suggestions: bool = True,
        observe: Observe = _ignore,
        outage_started: Callable[[], None] = _nothing,
        compiled: tuple[Planner, CompiledReads] | None = None,
        graphiql_assets_url: str | None = None,
        cache: ResponseCache | None = None,
        persisted: PersistedDocuments | None = None,
        ids: RequestIds | None = None,
    ) -> None:
        self._schema = schema
        self._documents = documents
        self._limits = documents.limits
        self._services = services
        self._decode_access = decode_access
        self._is_outage = is_outage
        self._budgets = budgets
        self._max_body = max_body_bytes
        self._graphiql = graphiql
        self._hide_suggestions = not suggestions
        self._observe = observe
        self._compiled = compiled
        self._outages = _Outages(outage_started)
        self._variable_values = Variables(schema, hide_suggestions=not suggestions)
        # Decided once: below the configured level the line would be built for nothing.
        self._log_operations = log.bind().is_enabled_for(logging.INFO)
        self._graphiql_html = graphiql_html(graphiql_assets_url) if graphiql else ""
        self._costs = RequestedCosts()
        self._cache = cache or ResponseCache(None, CacheHints(schema), CacheSettings())
        self._persisted = persisted or PersistedDocuments(Registry(None, documents), None)
        self._memo = RequestMemo()
        self._ids = ids or RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as an ASGI app (``graph.http.messages``: no Starlette request or
        response objects)."""
        reply = await self.handle(HttpRequest(scope, receive))
        await reply.send(send)

    async def at_edge(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as an ASGI app that does the edge middleware's job for its own
        responses (``graph.middleware.Edge``): the request id, echoed, and the count of
        HTTP responses by route and status."""
        request = HttpRequest(scope, receive)
        request.request_id = request_id = self._ids.assign(request.header(b"x-request-id"))
        reply = await self.handle(request, at_edge=True)
        reply.headers.append((b"x-request-id", request_id.encode()))
        await reply.send(send)

    async def handle(self, request: HttpRequest, *, at_edge: bool = False) -> Reply:
        started = time.perf_counter()
        request_id = request.request_id
        media = media_type(request.header(b"accept"))
        entry = _Log()
        context: Context | None = None
        # Whether the caller's identity is known (their token checked against the database):
        # a refusal can then show their budget.
        identified = False
        try:
            if request.method not in ("GET", "POST"):
                raise bad_request("Use GET or POST.", 405, Allow="GET, POST")
            if request.method == "GET" and self._wants_graphiql(request):
                return Reply(self._graphiql_html.encode(), media_type="text/html")
            if media is None:
                raise bad_request(f"Accept {JSON} or {GRAPHQL_RESPONSE}.", 406)
            source = await request_source(request, self._max_body)
            planned = self._memo.get(request.method, source)
            if planned is None:
                gql = parse_request(request, source, self._limits.max_operation_name)
                document = await self._document(gql)
            else:
                gql, document = planned.gql, planned.document
            if not self._persisted.admitted(document, None):
                context = await self._admitted_admin(document, request, request_id)
                identified = True
            if planned is None:
                planned = await self._plan(request, source, gql, document, entry)
            operation = planned.operation
            entry.name, entry.kind = operation.name, operation.kind.value
            requested = entry.requested = planned.requested
            if context is None:
                context = self._context(request, request_id)
            await auth.authenticate(context)
            identified = True
            if planned.explain:
                # Over the cost limit too: the refusal below sends clients here for the
                # breakdown, and explaining executes nothing (the document limits held).
                entry.outcome = "explained"
                allowance = await self._budgets.peek(await context.actor(), context.client_ip)
                response = self._explained(
                    operation, planned.variables.coerced, requested, allowance, media
                )
            else:
                self._within_cost_limit(requested)
                conditional = request.header(b"if-none-match") if request.method == "GET" else None
                response = await self._execute(planned, context, media, entry, conditional)
        except RequestFailed as failure:
            entry.outcome = "rejected"
            allowance = await self._known_allowance(request, context, identified)
            cost = _cost_extension(entry.requested or 0, 0, allowance)
            response = Reply(
                failure_body(failure, {"cost": cost}),
                failure.status_for(media),
                media or JSON,
                failure.headers,
                _rate_headers(allowance),
            )
        except Exception as error:
            # No budget call while something fails: the cost is said, the budget is not.
            cost = _cost_extension(entry.requested or 0, 0, UNLIMITED)
            if self._is_outage(error):
                entry.outcome = "unavailable"
                self._outages.failed(request_id, error)
                response = self._unavailable(request_id, media, cost)
            else:
                # A fault outside the resolvers (the identity lookup, say): the same masked,
                # coded answer as one inside them, never a bare 500 page.
                entry.outcome = "internal_error"
                log.exception("graphql.request_failed", request_id=request_id)
                response = self._internal(request_id, media, cost)
        if entry.outcome != "unavailable" and entry.path is not None:
            self._outages.served()
        elapsed = time.perf_counter() - started
        self._observe(
            entry.name, entry.kind, entry.outcome, elapsed, response.status if at_edge else None
        )
        if self._log_operations:
            self._log_operation(request_id, entry, elapsed, response, context)
        return response

    async def _plan(
        self,
        request: HttpRequest,
        source: bytes,
        gql: GraphQLRequest,
        document: Document,
        entry: _Log,
    ) -> Planned:
        """Work out what ``source`` stands for; kept in the memo once it all succeeded."""
        prepared = document.prepared or self._prepare(document.text)
        operation = self._operation(prepared, gql, request.method)
        entry.name, entry.kind = operation.name, operation.kind.value
        if prepared.errors:
            raise _validation_failed(prepared.errors)
        await self._persisted.register(document)
        variables = self._variables(operation, gql)
        requested = entry.requested = self._requested(operation, variables.coerced)
        cache = self._cache
        policy = cache.policy(operation)
        cache_base = (
            cache.key_base(document.sha256, operation, gql.variables)
            if cache.enabled and policy.cacheable
            else None
        )
        planned = Planned(
            gql,
            document,
            prepared,
            operation,
            variables,
            requested,
            policy,
            cache_base,
            explain=gql.extensions.get("costExplain") is True,
        )
        self._memo.put(request.method, source, planned)
        return planned

    def _log_operation(
        self,
        request_id: str,
        entry: _Log,
        elapsed: float,
        response: Reply,
        context: Context | None,
    ) -> None:
        log.info(
            "graphql.operation",
            request_id=request_id,
            operation_name=entry.name,
            operation_type=entry.kind,
            duration_ms=round(elapsed * 1000, 3),
            outcome=entry.outcome,
            path=entry.path,
            cache=entry.cache,
            status=response.status,
            requested_cost=entry.requested,
            actual_cost=entry.actual,
            viewer_id=str(context.viewer_id) if context and context.viewer_id else None,
        )

    # --- before execution ------------------------------------------------------------------

    def _wants_graphiql(self, request: HttpRequest) -> bool:
        return (
            self._graphiql
            and "query" not in request.query_params
            and "text/html" in (request.header(b"accept") or "")
        )

    def _context(self, request: HttpRequest, request_id: str) -> Context:
        return Context(
            request_id=request_id,
            services=self._services,
            claims=auth.claims(request, self._decode_access),
            client_ip=request.client_ip,
        )

    async def _document(self, gql: GraphQLRequest) -> Document:
        try:
            return await self._persisted.document(gql.query, gql.document_id, gql.extensions)
        except ValueError as error:
            raise bad_request(str(error)) from None
        except PersistedError as error:
            raise RequestFailed(400, error.code, error.message, legacy_ok=True) from None

    async def _admitted_admin(
        self, document: Document, request: HttpRequest, request_id: str
    ) -> Context:
        """The context of an admin allowed to run an untrusted document; refuses anyone else.

        Without the admin exemption the document is refused before anything reads it."""
        refused = RequestFailed(
            400,
            ErrorCode.DOCUMENT_NOT_TRUSTED,
            "Only registered documents run on this server: send a registered document's id"
            " or hash.",
            legacy_ok=True,
        )
        if not self._persisted.admins_exempt:
            raise refused
        context = self._context(request, request_id)
        await auth.authenticate(context)
        if not self._persisted.admitted(document, await context.actor()):
            raise refused
        return context

    def _prepare(self, query: str) -> Prepared:
        try:
            return self._documents.prepare(query)
        except GraphQLSyntaxError as error:
            locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
            raise RequestFailed(
                400,
                ErrorCode.GRAPHQL_PARSE_FAILED,
                error.message,
                locations=locations,
                legacy_ok=True,
            ) from None
        except DocumentRefused as refusal:
            raise RequestFailed(
                400,
                ErrorCode.QUERY_TOO_COMPLEX,
                refusal.message,
                extensions=refusal.extensions(),
                legacy_ok=True,
            ) from None

    def _operation(self, prepared: Prepared, gql: GraphQLRequest, method: str) -> OperationFigures:
        operation = prepared.figures.operation(gql.operation_name)
        if operation is None:
            raise bad_request(
                f"No operation named '{shown_name(gql.operation_name)}' in the document."
                if gql.operation_name
                else "The document has several operations: name one in 'operationName'."
            )
        if operation.kind is OperationType.SUBSCRIPTION:
            raise bad_request("Subscriptions are served over WebSocket.")
        if method == "GET" and operation.kind is not OperationType.QUERY:
            raise bad_request("Send mutations with POST.", 405, Allow="POST")
        return operation

    def _variables(self, operation: OperationFigures, gql: GraphQLRequest) -> VariableValues:
        coerced = self._variable_values.coerce(operation.node, gql.variables or {})
        if isinstance(coerced, list):
            raise _bad_variables(coerced)
        return coerced

    def _requested(self, operation: OperationFigures, variables: dict[str, Any]) -> int:
        try:
            cost = self._costs.requested(operation, variables)
        except PageSizeOutOfRange as error:
            raise RequestFailed(
                400,
                ErrorCode.BAD_USER_INPUT,
                str(error),
                extensions={"argument": error.argument, "path": error.path},
                legacy_ok=True,
            ) from None
        return cost

    def _within_cost_limit(self, cost: int) -> None:
        maximum = self._limits.max_cost
        if cost > maximum:
            raise RequestFailed(
                400,
                ErrorCode.QUERY_TOO_COMPLEX,
                f"The operation may cost {cost:,} points; at most {maximum:,} are allowed per"
                " operation. Ask for smaller pages or fewer nested lists"
                " (send extensions.costExplain for the breakdown).",
                extensions={"limit": "cost", "maximum": maximum, "measured": cost},
                legacy_ok=True,
            )

    def _explained(
        self,
        operation: OperationFigures,
        variables: dict[str, Any],
        requested: int,
        allowance: Allowance,
        media: str,
    ) -> Reply:
        rows = [
            row for row in explain(operation, variables) if row["kind"] != "leaf" or row["cost"]
        ]
        cost = {
            **_cost_extension(requested, 0, allowance),
            "maximumQueryCost": self._limits.max_cost,
        }
        body = {"extensions": {"cost": cost, "costExplain": rows}}
        return Reply(encode(body), media_type=media, raw=_rate_headers(allowance))

    async def _known_allowance(
        self, request: HttpRequest, context: Context | None, identified: bool
    ) -> Allowance:
        """The budget a refused request would have spent from, when it is known without the
        database: an anonymous caller's (by address), or a signed-in one's once their token
        was checked; else ``UNLIMITED`` (no figures). Nothing is taken."""
        try:
            if identified and context is not None:
                return await self._budgets.peek(await context.actor(), context.client_ip)
            if not request.has_header(b"authorization"):
                return await self._budgets.peek(None, request.client_ip)
        except Exception:
            # The refusal is the answer; its figures are not worth failing it for.
            log.exception("graphql.budget_peek_failed", request_id=request.request_id)
        return UNLIMITED

    # --- execution ---------------------------------------------------------------------------

    async def _execute(
        self,
        planned: Planned,
        context: Context,
        media: str,
        entry: _Log,
        conditional: str | None,
    ) -> Reply:
        actor = await context.actor()
        cache = self._cache
        operation, requested, policy = planned.operation, planned.requested, planned.policy
        key = ""
        if planned.cache_base is not None:
            scope = key_scope(policy, context.viewer_id)
            key = planned.cache_keys.get(scope) or cache.scoped_key(planned.cache_base, scope)
            if context.viewer_id is None:
                # Public and anonymous keys are the same for every caller: kept with the plan.
                planned.cache_keys[scope] = key

        # Sent now, so that the budget's command and the cache's lookup leave in the same
        # turn of the loop and a hit waits for one round trip to Redis, not two.
        taking = self._budgets.take_now(actor, context.client_ip, requested)

        async def run() -> _Answer:
            allowance = await taking.allowance()
            if not allowance.allowed:
                raise _Refused(allowance)
            context.requested_cost = requested
            context.allowance = allowance
            try:
                answer = await self._run(planned, context, entry)
            except _Outage:
                await self._budgets.settle(allowance, 0)
                raise
            return dataclasses.replace(answer, allowance=allowance)

        try:
            served = await cache.fetch(key, policy, operation, context.viewer_id, run)
        except _Refused as refused:
            entry.outcome = "throttled"
            return self._throttled(refused.allowance, requested, media)
        except _Outage as outage:
            raise outage.error from None
        except BaseException:
            taking.abandon()
            raise
        entry.cache = served.status  # a StrEnum: its own value
        if served.status is CacheStatus.HIT:
            assert served.entry is not None
            hit = served.entry
            # Charged like a miss: the requested cost must fit, and all but what the
            # stored answer holds comes back.
            allowance = await taking.allowance()
            if not allowance.allowed:
                entry.outcome = "throttled"
                return self._throttled(allowance, requested, media)
            allowance = self._budgets.settle_later(allowance, hit.actual_cost)
            entry.path = "cache"
            body, actual, status, headers = hit.body, hit.actual_cost, 200, None
            etag: str | None = hit.etag
            max_age = int(hit.fresh_until - time.time())
        else:
            assert served.answer is not None
            answer = served.answer
            entry.outcome = answer.outcome
            body, actual, status = answer.body, answer.actual, answer.status
            headers = answer.headers
            etag = served.etag if status == 200 else None
            max_age = policy.max_age
            allowance = await self._budgets.settle(answer.allowance, actual)
        entry.actual = actual
        raw = _rate_headers(allowance)
        if operation.kind is OperationType.QUERY:
            raw += cache_headers(policy, etag, max_age)
            if etag is not None and matches(conditional, etag):
                entry.outcome = "not_modified"
                return Reply(status=304, media_type=None, headers=headers, raw=raw)
        extensions = encode(
            {"cost": _cost_extension(requested, actual, allowance), "cache": served.status}
        )
        # One copy of the stored bytes, their closing brace replaced by this request's own.
        content = b"".join((memoryview(body)[:-1], b',"extensions":', extensions, b"}"))
        return Reply(content, status, media, headers, raw)

    async def _run(self, planned: Planned, context: Context, entry: _Log) -> _Answer:
        """Execute the operation: compiled when it can be, else on the resolver path."""
        prepared, operation, gql = planned.prepared, planned.operation, planned.gql
        if self._compiled is not None:
            planner, reads = self._compiled
            compiled = planner.plan(prepared.document, operation)
            if compiled is not None:
                answer = await self._run_compiled(
                    compiled, reads, operation, planned.variables, context, entry
                )
                if answer is not None:
                    return answer
        entry.path = "resolver"
        executed: Executed = await run_operation(
            self._schema,
            prepared.document,
            gql.operation_name,
            gql.variables,
            context,
            self._is_outage,
            hide_suggestions=self._hide_suggestions,
        )
        if executed.outage is not None:
            raise _Outage(executed.outage)
        outcome = (
            "internal_error"
            if executed.internal_errors
            else ("errors" if executed.errors else "ok")
        )
        payload: dict[str, Any] = {}
        if executed.errors:
            payload["errors"] = executed.errors
        payload["data"] = executed.data
        status = 200
        headers: dict[str, str] = {}
        retry_after = _refused_whole(executed)
        if retry_after is not None:
            # Every root field was throttled (a sign-in or sign-up limit): nothing ran.
            outcome = "throttled"
            status = 429
            headers["Retry-After"] = str(retry_after)
        return _Answer(
            body=encode(payload),
            data=executed.data,
            actual=actual_cost(operation, executed.data),
            cacheable=not executed.errors,
            outcome=outcome,
            status=status,
            headers=headers,
        )

    async def _run_compiled(
        self,
        compiled: CompiledOperation,
        reads: CompiledReads,
        operation: OperationFigures,
        variables: VariableValues,
        context: Context,
        entry: _Log,
    ) -> _Answer | None:
        """The response from one SQL statement per root field, or None when an argument is
        one the resolver path refuses (it then runs, and says why)."""
        bound = bind(compiled, variables, await context.actor())
        if bound is None:
            return None
        try:
            texts = await reads.read(compiled.plan, bound)
        except Exception as error:
            if self._is_outage(error):
                raise _Outage(error) from error
            # The resolver path is the reference: a statement the database refuses (a bug,
            # a schema out of step) must not cost the client an answer it would give.
            log.exception("graphql.compiled_failed", request_id=context.request_id)
            return None
        entry.path = "compiled"
        keys = [root.key for root in compiled.plan.roots]
        data = {
            key: None if text is None else orjson.loads(text)
            for key, text in zip(keys, texts, strict=True)
        }
        fields = b",".join(
            orjson.dumps(key) + b":" + (b"null" if text is None else text.encode())
            for key, text in zip(keys, texts, strict=True)
        )
        return _Answer(
            body=b'{"data":{' + fields + b"}}",
            data=data,
            actual=actual_cost(operation, data),
            cacheable=True,
        )

    def _throttled(self, allowance: Allowance, requested: int, media: str) -> Reply:
        if allowance.retry_after is None:
            # Waiting would not help: the cost is over the whole budget of this kind of caller.
            raise RequestFailed(
                400,
                ErrorCode.QUERY_TOO_COMPLEX,
                f"The operation may cost {requested:,} points, more than the {allowance.capacity:,}"
                " your budget holds; ask for less (or sign in: budgets grow with the role).",
                extensions={
                    "limit": "budget",
                    "maximum": allowance.capacity,
                    "measured": requested,
                },
                legacy_ok=True,
            )
        retry_after = max(1, math.ceil(allowance.retry_after))
        body = {
            "errors": [
                {
                    "message": f"The operation costs {requested} points and {allowance.remaining}"
                    f" are available; retry in {retry_after} seconds.",
                    "extensions": {
                        "code": ErrorCode.RATE_LIMITED.value,
                        "retryAfter": retry_after,
                        "cost": _cost_extension(requested, 0, allowance),
                    },
                }
            ],
            "extensions": {"cost": _cost_extension(requested, 0, allowance)},
        }
        return Reply(
            encode(body), 429, media, {"Retry-After": str(retry_after)}, _rate_headers(allowance)
        )

    @staticmethod
    def _unavailable(request_id: str, media: str | None, cost: dict[str, Any]) -> Reply:
        body = {
            "errors": [
                {
                    "message": "The service is temporarily unavailable; retry shortly.",
                    "extensions": {
                        "code": ErrorCode.SERVICE_UNAVAILABLE.value,
                        "requestId": request_id,
                        "retryAfter": OUTAGE_RETRY_AFTER_SECONDS,
                    },
                }
            ],
            "extensions": {"cost": cost},
        }
        return Reply(
            encode(body), 503, media or JSON, {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
        )

    @staticmethod
    def _internal(request_id: str, media: str | None, cost: dict[str, Any]) -> Reply:
        body = {
            "errors": [
                {
                    "message": INTERNAL_MESSAGE,
                    "extensions": {
                        "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                        "requestId": request_id,
                    },
                }
            ],
            "extensions": {"cost": cost},
        }
        return Reply(encode(body), 500, media or JSON)


class _Coded(RequestFailed):
    """Several GraphQL errors of one kind, each given the same code; no data."""

    def __init__(self, status: int, code: ErrorCode, errors: tuple[GraphQLError, ...]) -> None:
        super().__init__(status, code, errors[0].message, legacy_ok=True)
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        coded = []
        for error in self._errors:
            formatted: dict[str, Any] = dict(error.formatted)
            formatted["extensions"] = {
                **(formatted.get("extensions") or {}),
                "code": self.code.value,
            }
            coded.append(formatted)
        return coded


def _validation_failed(errors: tuple[GraphQLError, ...]) -> RequestFailed:
    return _Coded(422, ErrorCode.GRAPHQL_VALIDATION_FAILED, errors)


def _bad_variables(errors: list[GraphQLError]) -> RequestFailed:
    return _Coded(400, ErrorCode.BAD_USER_INPUT, tuple(errors))


def _refused_whole(executed: Executed) -> int | None:
    """The longest ``retryAfter`` when throttles refused every root field, else None."""
    data = executed.data
    if not data or not executed.errors or any(value is not None for value in data.values()):
        return None
    waits: list[int] = []
    for error in executed.errors:
        extensions = error.get("extensions") or {}
        if extensions.get("code") != ErrorCode.RATE_LIMITED.value:
            return None
        waits.append(int(extensions.get("retryAfter") or 1))
    return max(waits)


def _cost_extension(requested: int, actual: int, allowance: Allowance) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": allowance.throttle_status(),
    }


def _rate_headers(allowance: Allowance) -> list[tuple[bytes, bytes]]:
    """The ``RateLimit-*`` headers of a response, as uvicorn sends them."""
    if not allowance.limited:
        return []
    return [
        (b"ratelimit-limit", str(allowance.capacity).encode()),
        (b"ratelimit-remaining", str(max(0, math.floor(allowance.remaining))).encode()),
        (b"ratelimit-reset", str(max(0, math.ceil(allowance.reset_after))).encode()),
    ]
