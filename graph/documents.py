"""Parsing and validating documents: bounded in size, cached only when small.

A parsed document is some eighty times the size of its text, so an unbounded
document (or a cache of large ones) lets anyone exhaust memory and stall the
event loop. Documents are capped in tokens; the parse and validation caches
hold only documents of ordinary size, which is every real client operation.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate

MAX_TOKENS = 2_000
MAX_ALIASES = 30
MAX_DEPTH = 12
CACHEABLE_CHARS = 4_096
CACHE_SIZE = 512


@lru_cache(maxsize=CACHE_SIZE)
def _parse_small(query: str) -> DocumentNode:
    return parse(query, max_tokens=MAX_TOKENS)


def parse_document(query: str) -> DocumentNode:
    """Parse with the token cap; raises ``GraphQLSyntaxError`` for bad or oversized documents."""
    if len(query) <= CACHEABLE_CHARS:
        return _parse_small(query)
    return parse(query, max_tokens=MAX_TOKENS)


@lru_cache(maxsize=CACHE_SIZE)
def _validate_small(
    schema: GraphQLSchema, query: str, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    return validate(schema, _parse_small(query), rules)


def validate_document(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    rules: Collection[type[ASTValidationRule]],
) -> list[GraphQLError]:
    if len(query) <= CACHEABLE_CHARS:
        return _validate_small(schema, query, tuple(rules))
    return validate(schema, document, tuple(rules))
