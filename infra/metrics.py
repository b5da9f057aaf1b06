"""Prometheus metrics, served at /metrics.

Under ``marketgraph serve`` every process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen when
prometheus_client is first imported), and a scrape, whichever worker answers it, reads
and sums all of them: counters and histograms add up over processes, the gauges below
are summed over live processes. Without that variable (tests, other tools) each
process keeps its own values in memory.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

SQL_STATEMENTS = Counter("marketgraph_sql_statements_total", "SQL statements sent to the database.")
OPERATION_COUNT = Counter(
    "marketgraph_graphql_operations_total",
    "GraphQL operations answered, by operation name, kind and outcome.",
    ["operation", "kind", "outcome"],
)
OPERATION_LATENCY = Histogram(
    "marketgraph_graphql_operation_seconds",
    "Time from receiving a GraphQL request to its response, by operation name and outcome.",
    ["operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "marketgraph_http_requests_total",
    "HTTP requests answered, by route and status code.",
    ["route", "status"],
)
DB_CONNECTIONS_OPENED = Counter(
    "marketgraph_db_connections_opened_total",
    "Database connections the API's pool opened. Flat under steady load: a rising count"
    " is connection churn.",
)
DB_POOL_OPEN = Gauge(
    "marketgraph_db_pool_connections",
    "Database connections held by the API's pools (in use or idle), over live processes.",
    multiprocess_mode="livesum",
)
DB_POOL_IN_USE = Gauge(
    "marketgraph_db_pool_connections_in_use",
    "Database connections checked out of the API's pools right now, over live processes.",
    multiprocess_mode="livesum",
)
CACHE_REQUESTS = Counter(
    "marketgraph_cache_requests_total",
    "Query operations by what the response cache did: hit (answered from it), miss (run,"
    " then stored if it could be) or bypass (not cacheable, or the cache unreachable).",
    ["result"],
)
CACHE_WAITS = Counter(
    "marketgraph_cache_single_flight_waits_total",
    "Cache misses that waited for an identical request already running instead of running"
    " the operation themselves.",
)
CACHE_STALE = Counter(
    "marketgraph_cache_stale_served_total",
    "Hits answered with an entry past its max age (within the stale grace) while one"
    " request refreshed it.",
)
CACHE_INVALIDATIONS = Counter(
    "marketgraph_cache_invalidations_total",
    "Cache tags invalidated by committed writes (mutations and jobs).",
)
CACHE_REDIS_ERRORS = Counter(
    "marketgraph_cache_redis_errors_total",
    "Response-cache and persisted-query calls to Redis that failed; the request went on"
    " without them. By operation.",
    ["operation"],
)
DATABASE_OUTAGES = Counter(
    "marketgraph_database_outages_total",
    "Times requests started failing because the database was unreachable (each outage once,"
    " however many requests it refused with 503).",
)
PROCESSES = Gauge(
    "marketgraph_api_processes",
    "API processes serving (one per uvicorn worker) whose values this scrape sums.",
    multiprocess_mode="livesum",
)

ANONYMOUS = "anonymous"
OTHER = "other"
KINDS = frozenset({"query", "mutation", "subscription"})
# A GraphQL name (the spec's Name grammar) of a sane length.
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_OUTCOME = re.compile(r"[a-z_]{1,32}")
OPERATION_NAMES_MAX = 200


class OperationNames:
    """Bounds the ``operation`` label: every label value is a series, kept forever.

    Anonymous operations are ``anonymous``; a name that is not a GraphQL name of at
    most 64 characters, and every new name once ``limit`` names have been seen by
    this process, is ``other``. A client inventing names can therefore fill the
    first ``limit`` slots, but never grow the series without bound.
    """

    def __init__(self, limit: int = OPERATION_NAMES_MAX) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def label(self, name: str | None) -> str:
        if not name:
            return ANONYMOUS
        if name in self._known:
            return name
        if len(self._known) >= self._limit or not _OPERATION_NAME.fullmatch(name):
            return OTHER
        self._known.add(name)
        return name


_names = OperationNames()


class Tally:
    """The per-request metrics of this process, kept in plain dicts and written to
    prometheus in batches (``flush``).

    Under ``marketgraph serve`` every prometheus update is a locked write to a shared
    memory-mapped file (with a ``getpid()`` system call): the four series a request
    touches cost a cache hit about 11 µs of its ~60 in process, more than its own cache
    lookup. Here an update is a dict increment; the batch goes out at least every
    ``FLUSH_SECONDS`` (``start``), before this process answers a scrape, and when it
    stops. A scrape answered by another worker may therefore miss up to a second of
    this one's requests, never more, and never counts one twice.

    A lock, uncontended in a server process (one event loop), keeps counts exact where
    several loops share a process (tests run servers in threads).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Counter, int] = {}
        # A histogram's pending observations: [sum, count in bucket 0, 1, ..., +Inf].
        self._observed: dict[Histogram, list[float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._users = 0

    def count(self, series: Counter) -> None:
        with self._lock:
            counts = self._counts
            counts[series] = counts.get(series, 0) + 1

    def observe(self, series: Histogram, seconds: float) -> None:
        self.timed(None, series, seconds)

    def timed(
        self,
        counter: Counter | None,
        histogram: Histogram,
        seconds: float,
        also: Counter | None = None,
    ) -> None:
        """``count(counter)``, ``count(also)`` and ``observe(histogram, seconds)`` under one
        lock (every request does them all)."""
        # The first bucket whose bound is at least the value, as Histogram.observe picks.
        bucket = 1 + bisect.bisect_left(_LATENCY_BOUNDS, seconds)
        with self._lock:
            counts = self._counts
            if counter is not None:
                counts[counter] = counts.get(counter, 0) + 1
            if also is not None:
                counts[also] = counts.get(also, 0) + 1
            pending = self._observed.get(histogram)
            if pending is None:
                pending = self._observed[histogram] = [0.0] * (len(_LATENCY_BOUNDS) + 2)
            pending[0] += seconds
            pending[bucket] += 1

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            observed, self._observed = self._observed, {}
        for counter, times in counts.items():
            counter.inc(times)
        for histogram, pending in observed.items():
            # prometheus_client has no public call for a batch of observations; its
            # Histogram keeps a value for the sum and one per bucket (non-cumulative), and
            # observe() adds to the sum and to one bucket. A test checks a batch against
            # observe() one by one, so an upgrade that changes this cannot go unnoticed.
            histogram._sum.inc(pending[0])
            buckets = histogram._buckets
            for index, n in enumerate(pending[1:]):
                if n:
                    buckets[index].inc(n)

    def start(self) -> None:
        """Flush every ``FLUSH_SECONDS`` from now on (for each ``start``, a ``stop``)."""
        self._users += 1
        if self._timer is None and multiprocess_mode():
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._tick)

    def stop(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def _tick(self) -> None:
        self.flush()
        self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._tick)


FLUSH_SECONDS = 1.0
_LATENCY_BOUNDS = LATENCY_BUCKETS
tally = Tally()

# The labelled series of each (name, kind, outcome) seen, so that a request costs no
# label lookup (labels() takes a lock and builds its key every time).
_series: dict[
    tuple[str | None, str | None, str, int | None], tuple[Counter, Histogram, Counter | None]
] = {}
_requests: dict[tuple[str, int], Counter] = {}
# The route the GraphQL endpoint's HTTP responses count under.
GRAPHQL_ROUTE = "/graphql"


def observe_operation(
    name: str | None,
    kind: str | None,
    outcome: str,
    seconds: float,
    http_status: int | None = None,
) -> None:
    """Count one GraphQL request and its latency; the edge calls it once per request.

    ``name`` is the executed operation's name (None when anonymous or unknown), ``kind``
    ``query``/``mutation``/``subscription`` (None when no operation was chosen),
    ``outcome`` a short snake_case word of the edge's (``ok``, ``errors``, ``rejected``,
    ``internal_error``, ...), ``seconds`` the time the request took. ``http_status``,
    when the endpoint itself is the edge: its HTTP response is counted too, as
    ``observe_request`` would (one call and one lock a request, not two).
    """
    key = (name, kind, outcome, http_status)
    series = _series.get(key)
    if series is None:
        operation = _names.label(name)
        kind_label = kind if kind in KINDS else ("none" if kind is None else OTHER)
        outcome_label = outcome if _OUTCOME.fullmatch(outcome) else OTHER
        series = (
            OPERATION_COUNT.labels(operation, kind_label, outcome_label),
            OPERATION_LATENCY.labels(operation, outcome_label),
            None if http_status is None else _request_series(GRAPHQL_ROUTE, http_status),
        )
        # Bounded as the labels are: names beyond the first ones all share "other".
        if len(_series) < 4 * OPERATION_NAMES_MAX:
            _series[key] = series
    tally.timed(series[0], series[1], seconds, series[2])


def _request_series(route: str, status: int) -> Counter:
    series = _requests.get((route, status))
    if series is None:
        series = _requests[(route, status)] = HTTP_REQUESTS.labels(route, str(status))
    return series


def observe_request(route: str, status: int) -> None:
    """Count one HTTP response by route (a bounded set) and status."""
    tally.count(_request_series(route, status))


_CACHE_EVENTS = {
    "hit": CACHE_REQUESTS.labels("hit"),
    "miss": CACHE_REQUESTS.labels("miss"),
    "bypass": CACHE_REQUESTS.labels("bypass"),
    "wait": CACHE_WAITS,
    "stale": CACHE_STALE,
}


def observe_cache(event: str) -> None:
    """Count one event of the response cache: ``hit``, ``miss``, ``bypass``, ``wait``
    (a miss that waited for an identical request) or ``stale`` (a stale hit)."""
    tally.count(_CACHE_EVENTS[event])


def observe_database_outage() -> None:
    """Count one database outage; the edge calls it when the first request fails with one."""
    DATABASE_OUTAGES.inc()


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


def exposition() -> tuple[bytes, str]:
    """The scrape body and its media type: every process's values when there are several."""
    tally.flush()
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_started() -> None:
    """On the event loop: this process serves (and flushes its request metrics)."""
    PROCESSES.set(1)
    tally.start()


def process_stopped() -> None:
    """Write what is pending and drop this process's live gauges, so a scrape no longer
    counts it."""
    tally.stop()
    PROCESSES.set(0)
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# --- Connection pools, one series per pool --------------------------------------------------
# The unlabelled pool gauges above are the totals over the process's pools; these split them.
DB_POOL_OPEN_BY_POOL = Gauge(
    "marketgraph_db_pool_connections_by_pool",
    "Database connections held (in use or idle), by pool: sqlalchemy (writes, sign-ins, the"
    " resolver path) or compiled_reads (the compiled read path, sampled once a second);"
    " over live processes.",
    ["pool"],
    multiprocess_mode="livesum",
)
DB_POOL_IN_USE_BY_POOL = Gauge(
    "marketgraph_db_pool_connections_in_use_by_pool",
    "Database connections in use right now, by pool (as marketgraph_db_pool_connections"
    "_by_pool); over live processes.",
    ["pool"],
    multiprocess_mode="livesum",
)
