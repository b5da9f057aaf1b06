"""Preparing documents: parse, analyse, then validate; each step once per document.

The order is the defence. Parsing is capped in tokens (a document over the cap is
refused like one over any other limit). Analysis
(``graph.analysis``) walks each definition once and refuses, before
validation, any document whose expansion the limits would not admit, so no
later step (validation's overlapping-fields rule, execution) ever walks an
expanded tree that large. Only then is the document validated.

A prepared document is kept for the next request with the same text, in a
cache bounded both in entries and in the text it holds: a parsed document is
some eighty times the size of its text, so large documents are prepared every
time (they are rare and capped) instead of filling memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    parse,
    specified_rules,
    validate,
)
from graphql.error import GraphQLSyntaxError
from graphql.validation import NoSchemaIntrospectionCustomRule

from graph.analysis import DocumentFigures, Figures, analyse
from graph.cost import CostRules

CACHEABLE_CHARS = 16_384
CACHE_ENTRIES = 1_024
CACHE_CHARS = 2_000_000


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """What one document may stand for. Defaults are documented in README ("Limits")."""

    max_tokens: int = 2_000
    max_depth: int = 12
    # Introspection's own depth: graphql-core's standard introspection query is 15 deep.
    max_introspection_depth: int = 15
    max_aliases: int = 30
    max_directives: int = 50
    max_selections: int = 10_000
    max_operations: int = 20
    max_cost: int = 1_000
    max_operation_name: int = 100


class DocumentRefused(Exception):
    """The document is over a limit; ``limit`` names it, with its value and the measured one."""

    def __init__(self, limit: str, maximum: int, measured: int, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum
        self.measured = measured
        self.message = message

    def extensions(self) -> dict[str, Any]:
        return {"limit": self.limit, "maximum": self.maximum, "measured": self.measured}


@dataclass(frozen=True, slots=True)
class Prepared:
    document: DocumentNode
    figures: DocumentFigures
    # Validation errors; empty when the document is valid.
    errors: tuple[GraphQLError, ...]


def check_figures(figures: DocumentFigures, limits: DocumentLimits) -> None:
    """Refuse a document whose largest definition is over any limit."""
    if figures.operation_count > limits.max_operations:
        raise DocumentRefused(
            "operations",
            limits.max_operations,
            figures.operation_count,
            f"The document has {figures.operation_count} operations; at most"
            f" {limits.max_operations} are allowed.",
        )
    largest: Figures = figures.largest
    checks = (
        (
            "selections",
            limits.max_selections,
            largest.selections,
            "field selections once its fragments are expanded",
        ),
        ("depth", limits.max_depth, largest.depth, "levels of nested fields"),
        (
            "introspectionDepth",
            limits.max_introspection_depth,
            largest.introspection_depth,
            "levels of nested introspection fields",
        ),
        ("aliases", limits.max_aliases, largest.aliases, "aliases"),
        ("directives", limits.max_directives, largest.directives, "directives"),
    )
    for name, maximum, measured, what in checks:
        if measured > maximum:
            shown = f"{measured:,}" if measured < 10**12 else f"more than {10**12:,}"
            raise DocumentRefused(
                name,
                maximum,
                min(measured, 2**53),
                f"The document stands for {shown} {what}; at most {maximum:,} are allowed.",
            )


def _parse(query: str, max_tokens: int) -> DocumentNode:
    """The parsed document; over the token cap, ``DocumentRefused``.

    The parser stops at the first token past the cap (comments count: a document padded
    with them is stopped as early), so the measured value is that token's number, one past
    the cap: counting the rest would read up to a whole body, the work the cap spares.
    """
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLSyntaxError as error:
        # graphql-core says so in this one message, from the parser and from the lexer's
        # run of comments alike (tests/api/test_limits.py holds both to it).
        if not error.message.endswith(f"more than {max_tokens} tokens. Parsing aborted."):
            raise
    raise DocumentRefused(
        "tokens",
        max_tokens,
        max_tokens + 1,
        f"The document has more than {max_tokens:,} tokens; at most {max_tokens:,} are"
        " allowed (parsing stopped there).",
    )


class Documents:
    """Prepares documents for one schema and one set of limits, keeping recent ones."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: DocumentLimits,
        *,
        introspection: bool = True,
        suggestions: bool = True,
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.rules = CostRules(schema)
        self._validation_rules = (
            tuple(specified_rules)
            if introspection
            else (*specified_rules, NoSchemaIntrospectionCustomRule)
        )
        self._hide_suggestions = not suggestions
        self._cache: OrderedDict[str, Prepared] = OrderedDict()
        self._cached_chars = 0
        # Documents parsed and validated so far (what the cache above spares).
        self.prepared = 0

    def prepare(self, query: str) -> Prepared:
        """The prepared document; raises ``GraphQLSyntaxError`` or ``DocumentRefused`` (over
        the token cap too).

        A refused document is not cached: refusing it again costs one capped
        parse and one linear walk, and caching it would let refusals evict the
        documents real clients send.
        """
        found = self._cache.get(query)
        if found is not None:
            self._cache.move_to_end(query)
            return found
        self.prepared += 1
        document = _parse(query, self.limits.max_tokens)
        figures = analyse(self.rules, document)
        check_figures(figures, self.limits)
        errors = validate(
            self.schema,
            document,
            self._validation_rules,
            hide_suggestions=self._hide_suggestions,
        )
        prepared = Prepared(document, figures, tuple(errors))
        if len(query) <= CACHEABLE_CHARS:
            self._remember(query, prepared)
        return prepared

    def _remember(self, query: str, prepared: Prepared) -> None:
        self._cache[query] = prepared
        self._cached_chars += len(query)
        while len(self._cache) > CACHE_ENTRIES or self._cached_chars > CACHE_CHARS:
            evicted, _ = self._cache.popitem(last=False)
            self._cached_chars -= len(evicted)
