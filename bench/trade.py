"""Load benchmark for the ``buyShares`` mutation: requests/s, p99 and SQL statements per trade.

Recreates a small PostgreSQL database of its own (its name must contain "bench"),
starts ``marketgraph serve`` (reusing bench/run.py's server, HTTP client and load
loop), signs up one trader per connection with a large starting balance, and has
each buy small amounts of YES or NO in a few markets, back to back, for a fixed time.
Every trade is a real transaction: a market row lock, a conditional debit, and the
position, trade, ledger and market writes.

    .venv/bin/python bench/trade.py [--duration 10] [--concurrency 32] [--markets 8]

Traders are spread over the markets, so a run measures both the per-market lock
(trades of one market take turns) and the per-trade cost.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

# bench/run.py: the script's own directory is first on sys.path.
import run as base
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/marketgraph_bench_trade"
PASSWORD = "bench trade password"
BUY = (
    "mutation Buy($input: BuySharesInput!) { buyShares(input: $input) { __typename"
    " ... on BuySharesSuccess { trade { id amount } } ... on Error { code } } }"
)
SIGN_UP = "mutation ($input: SignUpInput!) { signUp(input: $input) { __typename } }"
SIGN_IN = (
    "mutation ($input: SignInInput!) { signIn(input: $input) {"
    " ... on SignInSuccess { accessToken } ... on Error { code } } }"
)
CREATE = (
    "mutation ($input: CreateMarketInput!) { createMarket(input: $input) {"
    " ... on CreateMarketSuccess { market { id } } ... on Error { code message } } }"
)
SUCCESS = b'"BuySharesSuccess"'


@dataclass(frozen=True, slots=True)
class TradeConfig:
    duration: float
    warmup: float
    concurrency: int
    markets: int
    database_url: str


def parse_args(argv: Sequence[str] | None) -> TradeConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (traders)")
    parser.add_argument("--markets", type=int, default=8, help="markets traded in")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency <= 0 or args.markets <= 0:
        parser.error("--duration, --concurrency and --markets must be positive")
    return TradeConfig(
        args.duration, max(0.0, args.warmup), args.concurrency, args.markets, args.database_url
    )


def server_config(config: TradeConfig) -> base.Config:
    """bench/run.py's configuration, as far as its server needs one."""
    return base.Config(
        duration=config.duration,
        warmup=config.warmup,
        concurrency=config.concurrency,
        workers=1,
        database_url=config.database_url,
        reseed=True,
        users=0,
        markets=config.markets,
        positions=0,
        only=(),
        environment="production",
        db_pool_size=None,
        save=False,
    )


def authorized_request(port: int, body: bytes, token: str) -> bytes:
    """bench/run.py's pre-encoded POST, with the trader's bearer token."""
    request = base.post_request(port, body)
    head, _, rest = request.partition(b"\r\n")
    return head + f"\r\nAuthorization: Bearer {token}".encode() + b"\r\n" + rest


async def graphql(port: int, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """One checked request outside the measurement."""
    body = orjson.dumps({"query": query, "variables": variables})
    request = (
        base.post_request(port, body) if token is None else authorized_request(port, body, token)
    )
    conn = await base.connect(port)
    try:
        async with asyncio.timeout(base.REQUEST_TIMEOUT):
            status, answer, _ = await base.exchange(conn, request)
    finally:
        conn.close()
    payload = orjson.loads(answer)
    if status != 200 or payload.get("errors"):
        raise base.BenchError(f"HTTP {status}: {answer[:400]!r}")
    return payload["data"]


async def trader(port: int, name: str) -> str:
    email = f"{name}.{uuid.uuid4().hex[:8]}@bench.example.com"
    await graphql(
        port,
        SIGN_UP,
        {"input": {"email": email, "password": PASSWORD, "displayName": name}},
        None,
    )
    signed = await graphql(port, SIGN_IN, {"input": {"email": email, "password": PASSWORD}}, None)
    token = signed["signIn"].get("accessToken")
    if not token:
        raise base.BenchError(f"sign-in failed: {signed}")
    return str(token)


async def prepare(port: int, config: TradeConfig) -> list[bytes]:
    """Traders and markets through the API; one pre-encoded purchase per trader."""
    tokens = await asyncio.gather(*(trader(port, f"trader{i}") for i in range(config.concurrency)))
    end = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    market_ids = []
    for i in range(config.markets):
        made = await graphql(
            port,
            CREATE,
            {"input": {"name": f"Bench trade market {i} {uuid.uuid4().hex[:8]}?", "endDate": end}},
            tokens[0],
        )
        market_ids.append(made["createMarket"]["market"]["id"])
    requests = []
    for i, token in enumerate(tokens):
        variables = {
            "input": {
                "marketId": market_ids[i % len(market_ids)],
                "outcome": "YES" if i % 2 == 0 else "NO",
                "amount": "0.5",
            }
        }
        body = orjson.dumps({"query": BUY, "variables": variables, "operationName": "Buy"})
        requests.append(authorized_request(port, body, token))
    for request in requests[:2]:  # check the answer's shape once
        conn = await base.connect(port)
        try:
            _, answer, _ = await base.exchange(conn, request)
        finally:
            conn.close()
        if SUCCESS not in answer:
            raise base.BenchError(f"a purchase failed: {answer[:400]!r}")
    return requests


async def measure(server: base.Server, config: TradeConfig) -> dict[str, Any]:
    await server.wait_ready()
    requests = await prepare(server.port, config)

    async def load(seconds: float) -> tuple[base.LoadStats, float]:
        """bench/run.py's connection loop, each connection trading as its own trader (two
        connections of one trader would only measure waiting on that trader's row)."""
        stats = base.LoadStats()
        started = time.perf_counter()
        deadline = started + seconds
        async with asyncio.TaskGroup() as group:
            for request in requests:
                group.create_task(base._worker(server.port, [request], 0, deadline, stats))
        return stats, time.perf_counter() - started

    await load(config.warmup)
    before = await base.sql_statements(server.port)
    stats, seconds = await load(config.duration)
    statements = await base.sql_statements(server.port) - before
    server.check_alive()
    latencies = sorted(stats.latencies)
    return {
        "trades_per_second": len(latencies) / seconds,
        "p50_ms": base.percentile(latencies, 0.50) * 1000,
        "p99_ms": base.percentile(latencies, 0.99) * 1000,
        "statements_per_trade": statements / stats.responses if stats.responses else None,
        "trades": len(latencies),
        "errors": sum(stats.failures.values()),
        "failures": dict(stats.failures),
        "samples": stats.samples,
    }


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, base._terminate)
    bench = server_config(config)
    env = base.server_env(bench)
    # Every trader can afford every purchase of the run: what is measured is trading.
    env["STARTING_BALANCE"] = "100000000"
    env["SIGNUP_CLIENT_LIMIT"] = "1000000"
    env["SIGNIN_CLIENT_LIMIT"] = "100000"
    url = make_url(config.database_url)
    try:
        base._bench_database_name(url)
        asyncio.run(base._recreate_database(url))
        base._marketgraph(["migrate"], env)
        base.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        with (
            base.running_server(
                bench, env, base.RESULTS_DIR / f"{stamp}-trade-server.log"
            ) as server,
            asyncio.Runner(loop_factory=base._loop_factory()) as runner,
        ):
            result = runner.run(measure(server, config))
    except base.BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the server was stopped", file=sys.stderr)
        return 130
    statements = result["statements_per_trade"]
    print(
        f"marketgraph buyShares: {config.duration:g} s at concurrency {config.concurrency},"
        f" {config.markets} markets, production mode"
    )
    print(
        f"trades/s {result['trades_per_second']:.1f}  p50 {result['p50_ms']:.2f} ms"
        f"  p99 {result['p99_ms']:.2f} ms  SQL/trade"
        f" {'n/a' if statements is None else f'{statements:.2f}'}"
        f"  trades {result['trades']}  errors {result['errors']}"
    )
    for sample in result["samples"]:
        print(f"  {sample}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
