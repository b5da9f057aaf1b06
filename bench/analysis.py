"""What measuring documents and their cost adds to a request, in microseconds.

For Q1..Q3 of ``bench/run.py`` it times, in this process and on the real schema:

- ``analyse``: the one walk that gives a document's figures and cost shape (done once per
  document text; later requests find it in the document cache);
- ``prepare``: parse + analyse + validate, the whole cold preparation, for comparison;
- ``requested``: the requested cost of a request (what every request pays before it runs);
- ``actual``: the actual cost counted over a full answer of the query's shape (20 markets,
  each with a creator and 10 positions with their users, for Q2);

and, for the hostile documents the limits exist for, how long refusing one takes.

    .venv/bin/python bench/analysis.py [--repeat 2000]

Per-request overhead on a cached document is ``requested + actual``; compare it with the
per-request figures ``bench/run.py`` prints (1 / req/s per process, with 32 connections).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from graphql import GraphQLSyntaxError
from run import QUERIES

from graph.analysis import actual_cost, analyse, requested_cost
from graph.documents import DocumentLimits, DocumentRefused, Documents
from graph.schema import build_schema


def micros(repeat: int, work: Callable[[], object]) -> float:
    """Median of five batches, in microseconds per call."""
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            work()
        batches.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(batches)


def user(i: int) -> dict[str, Any]:
    return {"id": f"VXNlcjp7{i}", "displayName": f"Trader {i}"}


def market(i: int, *, children: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": f"TWFya2V0Ons{i}",
        "name": f"Market {i}",
        "volume": "1234.50000000",
        "endDate": "2027-01-01T00:00:00.000000+00:00",
        "yesPrice": "0.52000000",
    }
    if children:
        found["creator"] = user(i)
        found["positions"] = {
            "nodes": [
                {"id": f"UG9zaXRpb246{i}{j}", "shares": "10", "outcome": "YES", "user": user(j)}
                for j in range(10)
            ]
        }
    return found


ANSWERS: dict[str, dict[str, Any]] = {
    "Q1": {"markets": {"nodes": [market(i, children=False) for i in range(20)]}},
    "Q2": {"markets": {"nodes": [market(i, children=True) for i in range(20)]}},
    "Q3": {"market": market(0, children=False) | {"creator": user(0)}},
}
VARIABLES: dict[str, dict[str, Any]] = {"Q1": {}, "Q2": {}, "Q3": {"id": "TWFya2V0OnsxfQ=="}}


def hostile() -> dict[str, str]:
    """The documents the limits are for, at about the size that froze the server before."""
    chain = "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(99))
    fragments = f"query {{ ...F0 }}\n{chain}\nfragment F99 on Query {{ viewer {{ id }} }}"
    deep = "query { " + "viewer { markets { nodes { creator { " * 12 + "id" + " } } } }" * 12 + " }"
    aliases = "query { " + " ".join(f"a{i}: viewer {{ id }}" for i in range(1000)) + " }"
    return {"fragments x2^99": fragments, "depth 50": deep, "1,000 aliases": aliases}


def measure(documents: Documents, name: str, text: str, repeat: int) -> tuple[float, ...]:
    """analyse, cold prepare, requested cost and actual cost of one query, in µs."""
    prepared = documents.prepare(text)
    operation = prepared.figures.operation(None)
    assert operation is not None
    assert not prepared.errors
    variables, answer = VARIABLES[name], ANSWERS[name]
    assert actual_cost(operation, answer) > 0
    schema, limits = documents.schema, documents.limits
    return (
        micros(repeat // 4, lambda: analyse(documents.rules, prepared.document)),
        micros(repeat // 20, lambda: Documents(schema, limits).prepare(text)),
        micros(repeat, lambda: requested_cost(operation, variables)),
        micros(repeat // 4, lambda: actual_cost(operation, answer)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="calls per timed batch")
    args = parser.parse_args()
    schema = build_schema()._schema
    limits = DocumentLimits()
    documents = Documents(schema, limits)
    print(f"{'query':<6}{'analyse':>10}{'prepare':>10}{'requested':>11}{'actual':>9}  (µs)")
    for name, text in QUERIES.items():
        analysed, cold, requested, actual = measure(documents, name, text, args.repeat)
        print(f"{name:<6}{analysed:>10.1f}{cold:>10.1f}{requested:>11.2f}{actual:>9.1f}")
    print("\nrefusing a hostile document (parse + analyse, never cached):")
    for label, text in hostile().items():

        def refuse(text: str = text) -> None:
            try:
                documents.prepare(text)
            except (DocumentRefused, GraphQLSyntaxError):
                return
            raise AssertionError("the document was admitted")

        print(f"  {label:<18}{micros(20, refuse):>10.1f} µs  ({len(text):,} bytes)")


if __name__ == "__main__":
    main()
