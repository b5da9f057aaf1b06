"""The operation label stays bounded, whatever names clients invent."""

from __future__ import annotations

from prometheus_client import REGISTRY

from infra.metrics import ANONYMOUS, OTHER, OperationNames, observe_operation, tally


def test_anonymous_operations_share_one_label() -> None:
    names = OperationNames(limit=3)
    assert names.label(None) == ANONYMOUS
    assert names.label("") == ANONYMOUS


def test_names_that_are_not_sane_graphql_names_fold_into_other() -> None:
    names = OperationNames(limit=10)
    for odd in ("1stQuery", "top-markets", "Top Markets", "Q" * 65, "Ünïcode", "a\nb"):
        assert names.label(odd) == OTHER, odd
    assert names.label("Q" * 64) == "Q" * 64


def test_only_the_first_names_seen_get_their_own_label() -> None:
    names = OperationNames(limit=3)
    assert [names.label(n) for n in ("A", "B", "A", "C")] == ["A", "B", "A", "C"]
    assert names.label("D") == OTHER
    assert names.label("B") == "B"  # a name already seen keeps its label


def sample(name: str, labels: dict[str, str]) -> float:
    tally.flush()  # as a scrape does first
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observe_operation_counts_by_name_kind_and_outcome() -> None:
    labels = {"operation": "MetricsUnitProbe", "kind": "query", "outcome": "ok"}
    latency = {"operation": "MetricsUnitProbe", "outcome": "ok"}
    count_before = sample("marketgraph_graphql_operations_total", labels)
    observed_before = sample("marketgraph_graphql_operation_seconds_count", latency)
    total_before = sample("marketgraph_graphql_operation_seconds_sum", latency)
    observe_operation("MetricsUnitProbe", "query", "ok", 0.25)
    observe_operation("MetricsUnitProbe", "query", "ok", 0.5)
    assert sample("marketgraph_graphql_operations_total", labels) == count_before + 2
    assert sample("marketgraph_graphql_operation_seconds_count", latency) == observed_before + 2
    assert sample("marketgraph_graphql_operation_seconds_sum", latency) == total_before + 0.75


def test_observe_operation_folds_what_it_cannot_label() -> None:
    labels = {"operation": OTHER, "kind": "none", "outcome": OTHER}
    before = sample("marketgraph_graphql_operations_total", labels)
    observe_operation("x" * 200_000, None, "Not OK!", 0.01)
    assert sample("marketgraph_graphql_operations_total", labels) == before + 1
