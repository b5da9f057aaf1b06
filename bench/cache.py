"""Response-cache benchmark: Q1-Q3 warm-cache next to uncached and the HTTP ceiling,
and a run across TTL expiries.

For each server below, the same database (bench/run.py's, or one named with
--database-url), the same queries, load client and ``marketgraph serve`` settings as
bench/run.py, one server process each:

* ``uncached``: ``RESPONSE_CACHE=false``, the executors alone;
* ``cache-lru``: the embedded default's in-process store (no Redis);
* ``cache-redis``: the store on Redis (``REDIS_URL``, default the machine's), budgets
  on Redis too, as in production;
* ``ceiling``: a bare Starlette endpoint under the same uvicorn settings, answering
  each request with the bytes the real server answered it with (pre-encoded, looked
  up by request body): what HTTP alone costs, the bound a hit path is read against.

Every server is started at once and the load goes to one at a time, in interleaved
rounds (``--rounds``, each starting with the next server): this machine's speed drifts
by up to a third within minutes, and servers measured one after the other were compared
at different speeds. Each figure is the median over the rounds. Each query is warmed up
first (so the cached runs measure hits), then measured.

Then the expiry run: Q2 on the Redis cache with a max age of 1 s, with and without the
stale grace, reporting p99 overall, of the requests that started within 200 ms after an
entry expired (when one request refreshes it), and elsewhere.

    .venv/bin/python bench/cache.py [--rounds 3] [--duration 10] [--concurrency 32]
        [--only Q1,Q3] [--modes cache-redis,ceiling]

Budgets are on, sized so they never throttle the load (``BUDGET_ANONYMOUS``): their
take and refund are part of every request, hit or miss.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import orjson

# bench/run.py: the script's own directory is first on sys.path.
import run as base

MODES = ("uncached", "cache-lru", "cache-redis", "ceiling")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Never the limit here: what a budget costs per request is measured, not its refusals.
ROOMY_BUDGET = "10000000:9999999"
EXPIRY_WINDOW = 0.2
MISS = b'"cache":"MISS"'


@dataclass(frozen=True, slots=True)
class CacheConfig:
    base: base.Config
    redis_url: str
    modes: tuple[str, ...]
    expiry: bool
    rounds: int


def parse_args(argv: Sequence[str] | None) -> CacheConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds a query")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each query")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds (the median is shown)"
    )
    parser.add_argument("--database-url", default=base.DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--markets", type=int, default=10000)
    parser.add_argument("--positions", type=int, default=200000)
    parser.add_argument("--only", default="Q1,Q2,Q3", help="queries, e.g. Q1,Q3")
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)}")
    parser.add_argument("--no-expiry", action="store_true", help="skip the expiry run")
    args = parser.parse_args(argv)
    only = tuple(name.strip().upper() for name in args.only.split(",") if name.strip())
    modes = tuple(mode.strip() for mode in args.modes.split(",") if mode.strip())
    if not only or any(name not in base.QUERIES for name in only):
        parser.error(f"--only: choose from {', '.join(base.QUERIES)}")
    if not modes or any(mode not in MODES for mode in modes):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    if args.duration <= 0 or args.concurrency <= 0 or args.rounds <= 0:
        parser.error("--duration, --concurrency and --rounds must be positive")
    config = base.Config(
        duration=args.duration,
        warmup=max(0.0, args.warmup),
        concurrency=args.concurrency,
        workers=1,
        database_url=args.database_url,
        reseed=False,
        users=args.users,
        markets=args.markets,
        positions=args.positions,
        only=only,
        environment="production",
        db_pool_size=None,
        save=False,
    )
    return CacheConfig(config, args.redis_url, modes, not args.no_expiry, args.rounds)


def mode_env(config: CacheConfig, mode: str, prefix: str, **extra: str) -> dict[str, str]:
    """bench/run.py's server environment, with the cache as the mode has it."""
    env = base.server_env(config.base)
    # bench/run.py turns budgets off; here every request pays, hit or miss, as in production.
    env["RATE_LIMITS"] = "on"
    env["BUDGET_ANONYMOUS"] = ROOMY_BUDGET
    # A key space per server: each starts with an empty cache (the fingerprint does not
    # tell a one-second max age from the default one).
    env["REDIS_KEY_PREFIX"] = f"{prefix}{mode}:{secrets.token_hex(2)}:"
    env["RESPONSE_CACHE"] = "false" if mode == "uncached" else "true"
    if mode == "cache-redis":
        env["REDIS_URL"] = config.redis_url
    env.update(extra)
    return env


# --- the ceiling ------------------------------------------------------------------------------


def serve_ceiling(port: int, answers_file: Path) -> None:
    """The bare endpoint: the recorded answer to each request body, and nothing else."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from graph.app import uvicorn_options
    from infra.settings import Settings

    recorded = orjson.loads(answers_file.read_bytes())
    answers = {
        bytes.fromhex(body): bytes.fromhex(answer)
        for pairs in recorded.values()
        for body, answer in pairs
    }

    async def graphql(request: Request) -> Response:
        return Response(answers[await request.body()], media_type="application/json")

    async def ready(_request: Request) -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    async def metrics(_request: Request) -> Response:
        return Response(f"{base.STATEMENTS_METRIC} 0\n".encode(), media_type="text/plain")

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/health/ready", ready),
            Route("/metrics", metrics),
        ]
    )
    settings = Settings.from_env()
    uvicorn.run(
        app,
        host=base.HOST,
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
        **uvicorn_options(settings),
    )


class CeilingServer(base.Server):
    """bench/run.py's server handling, around this script's ceiling endpoint instead."""

    def __init__(self, env: dict[str, str], answers_file: Path, log_path: Path) -> None:
        self.port = base.free_port()
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-ceiling",
            str(self.port),
            str(answers_file),
        ]
        self._launch(command, env, log_path)


Recorded = dict[str, list[list[str]]]


async def record_answers(port: int, requests: dict[str, list[bytes]]) -> Recorded:
    """What the real server answers each pre-encoded request with: by query, pairs of
    request body and answer (hex)."""
    recorded: Recorded = {}
    for name, encoded in requests.items():
        for request in encoded:
            conn = await base.connect(port)
            try:
                async with asyncio.timeout(base.REQUEST_TIMEOUT):
                    status, answer, _ = await base.exchange(conn, request)
            finally:
                conn.close()
            if status != 200:
                raise base.BenchError(f"HTTP {status} while recording: {answer[:300]!r}")
            body = request.partition(b"\r\n\r\n")[2]
            recorded.setdefault(name, []).append([body.hex(), answer.hex()])
    return recorded


def ceiling_requests(port: int, recorded: Recorded) -> dict[str, list[bytes]]:
    """The recorded requests, addressed to the ceiling's port."""
    return {
        name: [base.post_request(port, bytes.fromhex(body)) for body, _ in pairs]
        for name, pairs in recorded.items()
    }


# --- the expiry run ---------------------------------------------------------------------------


@dataclass(slots=True)
class Timed:
    started: float
    seconds: float
    refreshed: bool


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    label: str
    requests_per_second: float
    p99_ms: float
    p99_after_expiry_ms: float
    p99_elsewhere_ms: float
    max_ms: float
    refreshes: int
    errors: int


async def _timed_worker(
    port: int, request: bytes, deadline: float, out: list[Timed], errors: list[str]
) -> None:
    conn = await base.connect(port)
    clock = time.perf_counter
    try:
        while clock() < deadline:
            started = clock()
            async with asyncio.timeout(base.REQUEST_TIMEOUT):
                status, body, _ = await base.exchange(conn, request)
            if status != 200 or base.ERRORS_KEY in body:
                errors.append(body[:200].decode(errors="replace"))
                continue
            out.append(Timed(started, clock() - started, MISS in body))
    finally:
        conn.close()


async def expiry_run(port: int, request: bytes, config: base.Config, label: str) -> ExpiryResult:
    """Load one query across many expiries; p99 after each expiry against elsewhere."""
    timed: list[Timed] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + config.duration
    async with asyncio.TaskGroup() as group:
        for _ in range(config.concurrency):
            group.create_task(_timed_worker(port, request, deadline, timed, errors))
    seconds = time.perf_counter() - started
    refreshes = sorted(t.started for t in timed if t.refreshed)
    after: list[float] = []
    elsewhere: list[float] = []
    for sample in timed:
        if sample.refreshed:
            continue
        near = any(0 <= sample.started - at <= EXPIRY_WINDOW for at in refreshes)
        (after if near else elsewhere).append(sample.seconds)
    everything = sorted(t.seconds for t in timed)
    return ExpiryResult(
        label=label,
        requests_per_second=len(timed) / seconds,
        p99_ms=base.percentile(everything, 0.99) * 1000,
        p99_after_expiry_ms=base.percentile(sorted(after), 0.99) * 1000,
        p99_elsewhere_ms=base.percentile(sorted(elsewhere), 0.99) * 1000,
        max_ms=(everything[-1] if everything else 0.0) * 1000,
        refreshes=len(refreshes),
        errors=len(errors),
    )


# --- running ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    mode: str
    result: base.QueryResult


def run_all(config: CacheConfig, stamp: str) -> tuple[list[Row], list[ExpiryResult]]:
    prefix = f"mgbench:{secrets.token_hex(4)}:"
    base.prepare_database(config.base, mode_env(config, "uncached", prefix))
    logs = base.RESULTS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with asyncio.Runner(loop_factory=base._loop_factory()) as runner:
            measured: dict[tuple[str, str], list[base.QueryResult]] = {}
            with ExitStack() as stack:
                servers = _start(config, prefix, stamp, runner, stack)
                for number in range(config.rounds):
                    # Each round starts with the next server, so that none is always first.
                    turn = number % len(servers)
                    for name in config.base.only:
                        for mode, server, requests in servers[turn:] + servers[:turn]:
                            base._note(
                                f"round {number + 1}/{config.rounds}: {name} on {mode},"
                                f" {config.base.duration:g} s"
                            )
                            result = runner.run(
                                base.bench_query(server, config.base, name, requests[name])
                            )
                            measured.setdefault((mode, name), []).append(result)
            rows = [
                Row(mode, _median_result(measured[(mode, name)]))
                for mode in config.modes
                for name in config.base.only
            ]
            expiries = _expiries(config, prefix, stamp, runner) if config.expiry else []
    finally:
        _forget(config.redis_url, prefix)
    return rows, expiries


Servers = list[tuple[str, base.Server, dict[str, list[bytes]]]]


def _start(
    config: CacheConfig, prefix: str, stamp: str, runner: asyncio.Runner, stack: ExitStack
) -> Servers:
    """Every server of ``config.modes``, up and ready at once (an idle one costs nothing),
    with the requests each answers; the ceiling answers what the first real one did."""
    servers: Servers = []
    recorded: Recorded | None = None
    for mode in config.modes:
        if mode == "ceiling":
            continue
        base._note(f"server: {mode}")
        log = base.RESULTS_DIR / f"{stamp}-cache-{mode}.log"
        server = stack.enter_context(
            base.running_server(config.base, mode_env(config, mode, prefix), log)
        )
        runner.run(server.wait_ready())
        requests = runner.run(base.build_requests(server.port, config.base.only))
        if recorded is None:
            recorded = runner.run(record_answers(server.port, requests))
        servers.append((mode, server, requests))
    if "ceiling" in config.modes:
        if recorded is None:
            # Nothing recorded yet: ask an uncached server for the answers first.
            with base.running_server(
                config.base,
                mode_env(config, "uncached", prefix),
                base.RESULTS_DIR / f"{stamp}-cache-record.log",
            ) as server:
                runner.run(server.wait_ready())
                requests = runner.run(base.build_requests(server.port, config.base.only))
                recorded = runner.run(record_answers(server.port, requests))
        answers = base.RESULTS_DIR / f"{stamp}-ceiling-answers.json"
        answers.write_bytes(orjson.dumps(recorded))
        stack.callback(answers.unlink, missing_ok=True)
        base._note("server: ceiling")
        ceiling = CeilingServer(
            mode_env(config, "uncached", prefix), answers, base.RESULTS_DIR / f"{stamp}-ceiling.log"
        )
        stack.callback(ceiling.stop)
        runner.run(ceiling.wait_ready())
        servers.append(("ceiling", ceiling, ceiling_requests(ceiling.port, recorded)))
    return servers


def _median_result(results: Sequence[base.QueryResult]) -> base.QueryResult:
    """One query on one server over the rounds: the median of each figure, every error."""

    first = results[0]
    return replace(
        first,
        requests_per_second=statistics.median(r.requests_per_second for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        statements_per_request=base.median([r.statements_per_request for r in results]),
        responses=sum(r.responses for r in results),
        ok=sum(r.ok for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        server_cpu_percent=base.median([r.server_cpu_percent for r in results]),
        client_cpu_percent=statistics.median(r.client_cpu_percent for r in results),
        failures=dict(sum((Counter(r.failures) for r in results), Counter())),
        error_samples=[sample for r in results for sample in r.error_samples][:5],
    )


def _expiries(
    config: CacheConfig, prefix: str, stamp: str, runner: asyncio.Runner
) -> list[ExpiryResult]:
    results = []
    query = "Q2" if "Q2" in config.base.only else config.base.only[0]
    for stale in ("10", "0"):
        env = mode_env(
            config, "cache-redis", prefix, CACHE_MAX_AGE_SECONDS="1", CACHE_STALE_SECONDS=stale
        )
        label = f"{query}, max age 1 s, stale grace {stale} s"
        base._note(f"expiry run: {label}")
        with base.running_server(
            config.base, env, base.RESULTS_DIR / f"{stamp}-cache-expiry-{stale}.log"
        ) as server:
            runner.run(server.wait_ready())
            [request, *_] = runner.run(base.build_requests(server.port, (query,)))[query]
            duration = max(config.base.duration, 3.0)
            measured = replace(config.base, duration=duration)
            results.append(runner.run(expiry_run(server.port, request, measured, label)))
    return results


def _forget(redis_url: str, prefix: str) -> None:
    """Remove this run's keys from Redis (the cache's and the budgets')."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        for pattern in (f"{prefix}*", f"{{{prefix}*"):
            keys = list(client.scan_iter(match=pattern))
            if keys:
                client.delete(*keys)
    except redis.RedisError as error:
        base._note(f"could not remove this run's Redis keys ({error})")
    finally:
        client.close()


def render(rows: Sequence[Row], expiries: Sequence[ExpiryResult]) -> str:
    header = (
        f"{'mode':<13}{'query':<6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'SQL/req':>9}"
        f"{'errors':>8}{'of ceiling':>12}{'srv CPU':>9}{'CPU us/req':>12}{'load CPU':>10}"
    )
    lines = [header, "-" * len(header)]
    ceiling = {r.result.query: r.result.requests_per_second for r in rows if r.mode == "ceiling"}
    for row in rows:
        r = row.result
        statements = (
            "n/a" if r.statements_per_request is None else f"{r.statements_per_request:.2f}"
        )
        top = ceiling.get(r.query)
        share = f"{100 * r.requests_per_second / top:.0f}%" if top else "n/a"
        # Server CPU per answered request: what a hit costs, whatever else the box runs.
        cpu = r.server_cpu_percent
        per_request = (
            f"{cpu / 100 / r.requests_per_second * 1e6:.0f}"
            if cpu is not None and r.requests_per_second
            else "n/a"
        )
        lines.append(
            f"{row.mode:<13}{r.query:<6}{r.requests_per_second:>10.1f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{statements:>9}{r.errors:>8}{share:>12}"
            f"{'n/a' if cpu is None else f'{cpu:.0f}%':>9}{per_request:>12}"
            # The load client shares the machine's cores with the server (and Redis).
            f"{f'{r.client_cpu_percent:.0f}%':>10}"
        )
    if expiries:
        lines += [
            "",
            "expiry runs (Redis cache): p99 of requests started within"
            f" {EXPIRY_WINDOW * 1000:.0f} ms after an entry expired, against the rest",
        ]
        head = (
            f"{'run':<36}{'req/s':>9}{'p99':>8}{'p99 after':>11}{'p99 else':>10}"
            f"{'max ms':>9}{'refreshes':>11}{'errors':>8}"
        )
        lines += [head, "-" * len(head)]
        for e in expiries:
            lines.append(
                f"{e.label:<36}{e.requests_per_second:>9.1f}{e.p99_ms:>8.2f}"
                f"{e.p99_after_expiry_ms:>11.2f}{e.p99_elsewhere_ms:>10.2f}{e.max_ms:>9.2f}"
                f"{e.refreshes:>11}{e.errors:>8}"
            )
    return "\n".join(lines)


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--serve-ceiling"]:
        serve_ceiling(int(arguments[1]), Path(arguments[2]))
        return 0
    config = parse_args(arguments)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        rows, expiries = run_all(config, stamp)
    except base.BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the servers were stopped", file=sys.stderr)
        return 130
    b = config.base
    print(
        f"marketgraph cache bench: median of {config.rounds} interleaved rounds of"
        f" {b.duration:g} s per query and server, concurrency {b.concurrency},"
        f" 1 server process, {b.environment},"
        f" {b.users:,} users, {b.markets:,} markets, {b.positions:,} positions"
    )
    print(render(rows, expiries))
    failed = any(row.result.errors for row in rows) or any(e.errors for e in expiries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
