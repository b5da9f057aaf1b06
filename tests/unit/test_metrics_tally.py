"""The batched request metrics (infra.metrics.Tally) write what prometheus would have."""

from __future__ import annotations

import asyncio
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from infra.metrics import LATENCY_BUCKETS, Tally

# Every bucket, both sides of each bound, the bounds themselves, and beyond the last.
SECONDS = [0.0, 0.0004, *LATENCY_BUCKETS, *(b * 1.01 for b in LATENCY_BUCKETS), 30.0, 0.001]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def series(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    counter = Counter("t_requests_total", "requests", ["route"], registry=registry)
    latency = Histogram(
        "t_seconds", "latency", ["route"], buckets=LATENCY_BUCKETS, registry=registry
    )
    return counter.labels("/graphql"), latency.labels("/graphql")


def test_a_flushed_batch_equals_the_same_updates_made_one_by_one() -> None:
    direct, batched = CollectorRegistry(), CollectorRegistry()
    counter, latency = series(direct)
    batched_counter, batched_latency = series(batched)
    tally = Tally()
    for index, seconds in enumerate(SECONDS):
        counter.inc()
        latency.observe(seconds)
        # Half of them one by one, half as the edge records a request: both in one call.
        if index % 2:
            tally.count(batched_counter)
            tally.observe(batched_latency, seconds)
        else:
            tally.timed(batched_counter, batched_latency, seconds)
    assert samples(batched) != samples(direct)  # nothing written before the flush
    tally.flush()
    assert samples(batched) == samples(direct)
    tally.flush()  # a second flush writes nothing more
    assert samples(batched) == samples(direct)
    assert samples(direct)[("t_seconds_count", (("route", "/graphql"),))] == len(SECONDS)


def test_counts_from_several_threads_are_all_kept() -> None:
    registry = CollectorRegistry()
    counter, _ = series(registry)
    tally = Tally()
    # Each thread counts half, waits for a flush, then counts the rest: at least one flush
    # falls between counts whatever the scheduler does (threads left alone could all
    # finish before the flushing loop first ran).
    halfway = threading.Barrier(5)
    flushed = threading.Event()

    def count() -> None:
        for _ in range(10_000):
            tally.count(counter)
        halfway.wait()
        flushed.wait()
        for _ in range(10_000):
            tally.count(counter)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    halfway.wait()
    tally.flush()
    assert samples(registry)[("t_requests_total", (("route", "/graphql"),))] == 40_000
    flushed.set()
    while any(thread.is_alive() for thread in threads):
        tally.flush()  # flushing meanwhile loses nothing either
    for thread in threads:
        thread.join()
    tally.flush()
    assert samples(registry)[("t_requests_total", (("route", "/graphql"),))] == 80_000


def test_stopping_writes_what_is_pending() -> None:
    registry = CollectorRegistry()
    counter, _ = series(registry)
    tally = Tally()

    async def serve() -> None:
        tally.start()
        tally.count(counter)
        tally.stop()

    asyncio.run(serve())
    assert samples(registry)[("t_requests_total", (("route", "/graphql"),))] == 1
