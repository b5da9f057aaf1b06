"""/metrics of ``marketgraph serve --workers 2``: one scrape gives the sum over both workers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from infra.settings import Settings
from tests.serving import ServeProcess

TOP_MARKETS = "query TopMarkets { markets(first: 5) { totalCount } }"
ANONYMOUS = "{ markets(first: 1) { totalCount } }"
GRAPHQL_200 = {"route": "/graphql", "status": "200"}


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("prometheus")
    # Left by an earlier run (and not even readable): serve must clear it at start.
    (directory / "counter_1.db").write_bytes(b"stale")
    return directory


@pytest.fixture(scope="module")
def two_workers(
    settings: Settings, metrics_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    assert settings.redis_url is not None
    server = ServeProcess(
        tmp_path_factory.mktemp("two-workers"),
        "--workers",
        "2",
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        JWT_SECRET=settings.jwt_secret,
        DB_POOL_SIZE="4",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    with server:
        # Ready means one worker answers; wait until both have started.
        deadline = time.monotonic() + 120
        while scrape_sync(server.url).get(("marketgraph_api_processes", ())) != 2:
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.2)
        yield server


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_sync(url: str) -> Samples:
    return parse(httpx.get(f"{url}/metrics", timeout=30).text)


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=30) as client:
        return parse((await client.get(f"{url}/metrics")).text)


def key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def graphql_requests_by_process(directory: Path) -> dict[int, float]:
    """Each process's own count of answered /graphql requests, from its metrics file."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for raw, value, _timestamp, _position in values:
            _metric, sample, labels, _help = json.loads(raw)
            if sample == "marketgraph_http_requests_total" and labels == GRAPHQL_200:
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


async def send(url: str, query: str, times: int) -> None:
    # A new connection per request, so the kernel spreads them over both workers.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post("/graphql", json={"query": query}) for _ in range(times))
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]


async def test_a_scrape_sums_the_counts_of_both_workers(
    two_workers: ServeProcess, metrics_dir: Path
) -> None:
    assert not (metrics_dir / "counter_1.db").exists()
    sent = 0
    for _ in range(40):
        await send(two_workers.url, TOP_MARKETS, 10)
        sent += 10
        if len(graphql_requests_by_process(metrics_dir)) >= 2:
            break
    # Each worker writes its request counts at least once a second (infra.metrics.Tally).
    deadline = time.monotonic() + 10
    while sum(graphql_requests_by_process(metrics_dir).values()) < sent:
        assert time.monotonic() < deadline, graphql_requests_by_process(metrics_dir)
        await asyncio.sleep(0.1)
    by_process = graphql_requests_by_process(metrics_dir)
    assert len(by_process) == 2, by_process  # both workers served some
    assert sum(by_process.values()) == sent
    # Whichever worker answers the scrape, it reports the total.
    for _ in range(6):
        samples = await scrape(two_workers.url)
        assert samples[key("marketgraph_http_requests_total", GRAPHQL_200)] == sent
        assert samples[key("marketgraph_api_processes", {})] == 2
        assert samples[key("marketgraph_db_pool_connections", {})] >= 2  # both pools


async def test_operations_are_counted_by_name_over_both_workers(
    two_workers: ServeProcess,
) -> None:
    named = {"operation": "TopMarkets", "kind": "query", "outcome": "ok"}
    anonymous = {"operation": "anonymous", "kind": "query", "outcome": "ok"}
    before = await scrape(two_workers.url)
    await send(two_workers.url, TOP_MARKETS, 12)
    await send(two_workers.url, ANONYMOUS, 5)
    after = await scrape(two_workers.url)

    def delta(name: str, labels: dict[str, str]) -> float:
        return after.get(key(name, labels), 0.0) - before.get(key(name, labels), 0.0)

    # The worker that did not answer the scrape writes its counts within a second.
    deadline = time.monotonic() + 10
    while (
        delta("marketgraph_graphql_operations_total", named) < 12
        or delta("marketgraph_graphql_operations_total", anonymous) < 5
    ):
        assert time.monotonic() < deadline, "a worker's counts never reached the scrape"
        await asyncio.sleep(0.1)
        after = await scrape(two_workers.url)
    assert delta("marketgraph_graphql_operations_total", named) == 12
    assert delta("marketgraph_graphql_operations_total", anonymous) == 5
    latency = {"operation": "TopMarkets", "outcome": "ok"}
    assert delta("marketgraph_graphql_operation_seconds_count", latency) == 12
