"""A real ``marketgraph worker`` process settles a market: its writes invalidate the API's
cache on Redis like the API's own do, so the next query shows the payout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

from sqlalchemy.ext.asyncio import AsyncEngine

from infra.settings import Settings
from tests.api.caching import cache_server, cached_settings
from tests.api.trading import RESOLVE, buy
from tests.conftest import CREATE_MARKET, future
from tests.support import GraphQLClient, promote, sign_up_and_in

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
WAIT_SECONDS = 90.0
SETTLED = (
    "query ($market: ID!) { viewer { id balance }"
    " market(id: $market) { id status positions { nodes { id payout } } } }"
)


def start_worker(env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([MARKETGRAPH, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_a_payout_run_by_a_worker_process_shows_in_the_api(
    settings: Settings, tmp_path: Path, db: AsyncEngine
) -> None:
    # The API only enqueues; the worker process below takes the job from Redis.
    tuned = cached_settings(settings, jobs_in_process=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JOB_", "RESPONSE_", "CACHE_"))
    }
    env |= {
        "DATABASE_URL": tuned.database_url,
        "REDIS_URL": tuned.redis_url or "",
        "REDIS_KEY_PREFIX": tuned.redis_key_prefix,
        "JOB_QUEUE": tuned.job_queue,
        "JWT_SECRET": tuned.jwt_secret,
        "MARKETGRAPH_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = start_worker(env, log)
    try:
        async with cache_server(tuned) as client:
            gql = GraphQLClient(client.http)
            moderator = await sign_up_and_in(gql, "Moderator")
            await promote(db, moderator, "MODERATOR")
            creator = await sign_up_and_in(gql, "Maker")
            holder = await sign_up_and_in(gql, "Winner")
            created = await gql.data(
                CREATE_MARKET,
                {"input": {"name": f"Will {uuid.uuid4().hex[:8]} pay?", "endDate": future()}},
                token=creator.token,
            )
            market = created["createMarket"]["market"]["id"]
            assert (await buy(gql, holder, market, shares="10"))["__typename"] == (
                "BuySharesSuccess"
            )
            query = SETTLED + f" # {uuid.uuid4().hex}"
            before = await client.ask(query, {"market": market}, holder.token)
            assert (await client.ask(query, {"market": market}, holder.token)).cache == "HIT"
            await gql.data(
                RESOLVE, {"input": {"marketId": market, "outcome": "YES"}}, token=moderator.token
            )
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                reply = await client.ask(query, {"market": market}, holder.token)
                [position] = reply.data["market"]["positions"]["nodes"]
                if position["payout"] is not None:
                    break
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the worker's payout never showed"
                await asyncio.sleep(0.1)
        assert position["payout"] == "10.00000000"
        assert float(reply.data["viewer"]["balance"]) == (
            float(before.data["viewer"]["balance"]) + 10
        )
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
