"""Prometheus metrics of this process, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SQL_STATEMENTS = Counter("marketgraph_sql_statements_total", "SQL statements sent to the database.")
OPERATIONS = Counter(
    "marketgraph_graphql_operations_total",
    "GraphQL operations served, by type and outcome.",
    ["type", "outcome"],
)
OPERATION_SECONDS = Histogram(
    "marketgraph_graphql_operation_seconds",
    "Time to execute a GraphQL operation.",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
