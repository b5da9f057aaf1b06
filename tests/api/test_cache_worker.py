"""A real ``marketgraph worker`` process settles a market: its own writes (payouts and
refunds) invalidate the API's cache on Redis like the API's do, so the next query shows
them.

What a job changes must be dropped by the job itself, not by the mutation that queued
it: so the queries are cached after the mutation committed and before any worker runs
(the API runs no jobs itself and the worker starts only then), the API keeps answers for
an hour (no max age runs out during the test), and each query is asked exactly once
after the job finished.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.ids import from_global_id
from infra.db.models import jobs
from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings
from tests.api.trading import CANCEL, RESOLVE, buy
from tests.conftest import CREATE_MARKET, future
from tests.support import Account, GraphQLClient, promote, sign_up_and_in

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
# Bounds a hang of the worker only; nothing is asserted about how long the job took.
JOB_WAIT_SECONDS = 120.0
HOUR = 3_600

# Each shows part of what settlement changes, as its own cache entry.
QUERIES = {
    # PRIVATE: the holder's balance (User:<holder>).
    "balance": "query { viewer { id balance } }",
    # PRIVATE: the holder's ledger (User:<holder>/ledger).
    "ledger": "query { viewer { id ledger { totalCount nodes { kind amount } } } }",
    # PUBLIC: the market's positions, each tagged Position:<id>; nothing here is the user.
    "positions": (
        "query ($market: ID!) { market(id: $market) { id status"
        " positions { nodes { id payout settledAt } } } }"
    ),
}


def worker_env(tuned: Settings, data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JOB_", "RESPONSE_", "CACHE_"))
    }
    return env | {
        "DATABASE_URL": tuned.database_url,
        "REDIS_URL": tuned.redis_url or "",
        "REDIS_KEY_PREFIX": tuned.redis_key_prefix,
        "JOB_QUEUE": tuned.job_queue,
        "JWT_SECRET": tuned.jwt_secret,
        "MARKETGRAPH_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def worker_process(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [MARKETGRAPH, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield worker
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()


def tail(log: Path) -> str:
    return log.read_text()[-2000:]


async def job_finished(
    db: AsyncEngine, job_id: str, worker: subprocess.Popen[bytes], log: Path
) -> str:
    """The job's state once the worker finished it, read from its row (not through the API)."""
    parsed = from_global_id(job_id)
    assert parsed is not None
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while True:
        async with db.connect() as conn:
            state = (
                await conn.execute(sa.select(jobs.c.state).where(jobs.c.id == parsed[1]))
            ).scalar_one()
        if state.value in ("COMPLETE", "FAILED"):
            return str(state.value)
        assert worker.poll() is None, tail(log)
        assert time.monotonic() < deadline, f"the worker never finished the job ({state})"
        await asyncio.sleep(0.1)


Asked = tuple[str, dict[str, Any], str | None]


async def cached_before_the_job(
    client: CacheClient, holder: Account, market: str
) -> dict[str, tuple[Asked, Any]]:
    """Each query, under a text of this test's own, cached: how to ask it and its data."""
    primed: dict[str, tuple[Asked, Any]] = {}
    for name, query in QUERIES.items():
        text = f"{query} # {uuid.uuid4().hex}"
        variables = {"market": market} if "$market" in query else {}
        token = holder.token if "viewer" in query else None
        await client.ask(text, variables, token)
        again = await client.ask(text, variables, token)
        assert again.cache == "HIT", again.payload
        primed[name] = ((text, variables, token), again.data)
    return primed


@pytest.mark.parametrize("settlement", ["payout", "refund"])
async def test_a_settlement_job_run_by_a_worker_process_drops_what_it_changed(
    settings: Settings, tmp_path: Path, db: AsyncEngine, settlement: str
) -> None:
    # The API only enqueues; the worker process takes the job from Redis once it starts.
    tuned = cached_settings(settings, jobs_in_process=False, cache_max_age_seconds=HOUR)
    log_path = tmp_path / "worker.log"
    async with cache_server(tuned) as client:
        gql = GraphQLClient(client.http)
        moderator = await sign_up_and_in(gql, "Moderator")
        await promote(db, moderator, "MODERATOR")
        creator = await sign_up_and_in(gql, "Maker")
        holder = await sign_up_and_in(gql, "Holder")
        created = await gql.data(
            CREATE_MARKET,
            {"input": {"name": f"Will {uuid.uuid4().hex[:8]} settle?", "endDate": future()}},
            token=creator.token,
        )
        market = created["createMarket"]["market"]["id"]
        bought = await buy(gql, holder, market, shares="10")
        assert bought["__typename"] == "BuySharesSuccess", bought
        cost = bought["trade"]["amount"]
        if settlement == "payout":
            data = await gql.data(
                RESOLVE, {"input": {"marketId": market, "outcome": "YES"}}, token=moderator.token
            )
            job, owed, kind = data["resolveMarket"]["job"], "10.00000000", "PAYOUT"
        else:
            data = await gql.data(CANCEL, {"input": {"id": market}}, token=moderator.token)
            job, owed, kind = data["cancelMarket"]["job"], cost, "REFUND"
        # The mutation committed (and invalidated what it changed); no job has run.
        primed = await cached_before_the_job(client, holder, market)
        before = {name: data for name, (_, data) in primed.items()}
        [position] = before["positions"]["market"]["positions"]["nodes"]
        assert position["payout"] is None
        with worker_process(worker_env(tuned, tmp_path / "data"), log_path) as worker:
            assert await job_finished(db, job["id"], worker, log_path) == "COMPLETE"
        after = {}
        for name, ((text, variables, token), _) in primed.items():
            reply = await client.ask(text, variables, token)
            assert reply.cache == "MISS", f"{name}: the job's write left the entry in place"
            after[name] = reply.data
    assert float(after["balance"]["viewer"]["balance"]) == (
        float(before["balance"]["viewer"]["balance"]) + float(owed)
    )
    ledger = after["ledger"]["viewer"]["ledger"]
    assert ledger["totalCount"] == before["ledger"]["viewer"]["ledger"]["totalCount"] + 1
    assert ledger["nodes"][0] == {"kind": kind, "amount": owed}
    [settled] = after["positions"]["market"]["positions"]["nodes"]
    assert settled["payout"] == owed
    assert settled["settledAt"] is not None
