"""What a request's bytes stand for, worked out once.

Frontends send the same few requests over and over: the same query text (or
persisted hash) with the same variables, byte for byte. Everything the
endpoint derives from those bytes alone (the parsed JSON, the document found
by text, hash or id, its prepared form, the chosen operation, the coerced
variables, the requested cost and the response cache key's request part) is
the same every time, so it is kept here, keyed by the method and the bytes,
and a repeat goes straight to what depends on the caller and the data
(authentication, budgets, the cache, execution). On a cache hit that was
most of the work left after HTTP.

Only requests that got that far without an error are kept; everything that
depends on more than the bytes (who the caller is, whether trusted documents
admit them, budgets) is still decided per request. Bounded in entries and in
bytes of the requests kept, so a client sending ever new bodies only churns
it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from graphql.execution.values import VariableValues

from graph.analysis import OperationFigures
from graph.cache_policy import Policy
from graph.documents import Prepared
from graph.http.protocol import GraphQLRequest
from graph.persisted import Document

MEMO_ENTRIES = 4_096
MEMO_BYTES = 4_000_000
# Larger requests are worked out each time: they are rare, and would crowd out the rest.
MEMO_MAX_REQUEST_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class Planned:
    """Everything the endpoint derives from a request's bytes alone."""

    gql: GraphQLRequest
    document: Document
    prepared: Prepared
    operation: OperationFigures
    variables: VariableValues
    requested: int
    # The operation's cache policy (``graph.cache_policy``).
    policy: Policy
    # The response cache key's request part (None: not cached), and the keys made from it
    # so far by scope ("public", "anonymous"; a signed-in viewer's scope is not kept).
    cache_base: bytes | None = None
    cache_keys: dict[str, str] = field(default_factory=dict)
    # Asked for the cost breakdown (``extensions.costExplain``) rather than the result.
    explain: bool = False


class RequestMemo:
    """A bounded LRU of ``Planned`` by method and request bytes."""

    def __init__(self, entries: int = MEMO_ENTRIES, max_bytes: int = MEMO_BYTES) -> None:
        self._entries = entries
        self._max_bytes = max_bytes
        self._kept: OrderedDict[tuple[str, bytes], Planned] = OrderedDict()
        self._bytes = 0

    def get(self, method: str, source: bytes) -> Planned | None:
        key = (method, source)
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def put(self, method: str, source: bytes, planned: Planned) -> None:
        if len(source) > MEMO_MAX_REQUEST_BYTES:
            return
        key = (method, source)
        if key in self._kept:
            return
        self._kept[key] = planned
        self._bytes += len(source)
        while len(self._kept) > self._entries or self._bytes > self._max_bytes:
            (_, dropped), _ = self._kept.popitem(last=False)
            self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._kept)
