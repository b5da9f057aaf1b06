"""Load benchmark for the marketgraph GraphQL API.

Seeds a PostgreSQL database (or reuses one already seeded at the requested size),
starts ``marketgraph serve`` as a subprocess on a free port, and drives each query
(Q1..Q3) at a fixed concurrency for a fixed time with a lean keep-alive HTTP/1.1
client. Prints requests/s, p50/p99 latency and SQL statements per request, the
figures the README's Benchmark section shows.

    .venv/bin/python bench/run.py [--duration 10] [--concurrency 32] [--workers 1]

The client is hand-written on asyncio streams (not httpx) because on a 2-core box
the load generator competes with the server for CPU: every microsecond it spends
per request is taken from the thing being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
HOST = "127.0.0.1"  # the benchmark only ever talks to a server it started on this box
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/marketgraph_bench"
READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
RECONNECT_PAUSE = 0.05
MAX_ERROR_SAMPLES = 5
STATEMENTS_METRIC = "marketgraph_sql_statements_total"
# An object key named "errors" is the only way these bytes can occur in a JSON body
# (inside a string the closing quote would be escaped), and none of Q1..Q3 selects
# a field of that name: a substring test is exact here and far cheaper than parsing.
ERRORS_KEY = b'"errors":'

_TOP_MARKETS = (
    "markets(first: 20, filter: {status: ACTIVE}, orderBy: {field: VOLUME, direction: DESC})"
)
QUERIES: dict[str, str] = {
    "Q1": f"query Q1 {{ {_TOP_MARKETS} {{ nodes {{ id name volume endDate yesPrice }} }} }}",
    "Q2": (
        f"query Q2 {{ {_TOP_MARKETS} {{ nodes {{ id name volume endDate yesPrice"
        " creator { id displayName }"
        " positions(first: 10) { nodes { id shares outcome user { id displayName } } } } } }"
    ),
    "Q3": (
        "query Q3($id: ID!) { market(id: $id) { id name volume yesPrice"
        " creator { id displayName } } }"
    ),
}


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


class ProtocolError(Exception):
    """The server's answer is not an HTTP/1.1 response this client understands."""


@dataclass(frozen=True, slots=True)
class Config:
    duration: float
    warmup: float
    concurrency: int
    workers: int
    database_url: str
    reseed: bool
    users: int
    markets: int
    positions: int
    only: tuple[str, ...]
    environment: str
    db_pool_size: int | None
    save: bool


@dataclass(slots=True)
class LoadStats:
    """What one load run observed, across all its connections."""

    latencies: list[float] = field(default_factory=list)
    responses: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def fail(self, reason: str, sample: str) -> None:
        self.failures[reason] += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(f"{reason}: {sample}")


@dataclass(frozen=True, slots=True)
class QueryResult:
    query: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    statements_per_request: float | None
    responses: int
    ok: int
    errors: int
    seconds: float
    server_cpu_percent: float | None
    client_cpu_percent: float
    failures: dict[str, int]
    error_samples: list[str]


# --- database -------------------------------------------------------------------------------


def _async_url(url: URL) -> URL:
    return url.set(drivername="postgresql+asyncpg")


def _bench_database_name(url: URL) -> str:
    """Refuse any name we could not safely drop: the bench recreates its database at will."""
    name = url.database or ""
    if not re.fullmatch(r"[a-z0-9_]+", name) or "bench" not in name:
        raise BenchError(
            f"database name {name!r}: use a dedicated database whose name contains 'bench'"
            " (it may be dropped and recreated)"
        )
    return name


async def _seeded_size(url: URL) -> tuple[int, int, int] | None:
    """(users, markets, positions) in the bench database, or None when it has no data."""
    admin = create_async_engine(_async_url(url.set(database="postgres")))
    try:
        async with admin.connect() as conn:
            found = await conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if found.first() is None:
                return None
    finally:
        await admin.dispose()
    engine = create_async_engine(_async_url(url))
    try:
        async with engine.connect() as conn:
            present = await conn.execute(sa.text("SELECT to_regclass('public.positions')"))
            if present.scalar_one() is None:
                return None
            counts = await conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM markets),"
                    " (SELECT count(*) FROM positions)"
                )
            )
            users, markets, positions = counts.one()
            return int(users), int(markets), int(positions)
    finally:
        await engine.dispose()


async def _vacuum_analyze(url: URL) -> None:
    """Settle the freshly seeded tables before measuring.

    Without it autovacuum and the first statistics run can land in the middle of the
    first query's measurement (a smoke run straight after seeding saw heavy I/O wait
    and the server at half a core on Q1), and the planner works from stale estimates.
    """
    engine = create_async_engine(_async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("VACUUM (ANALYZE)"))
    finally:
        await engine.dispose()


async def _recreate_database(url: URL) -> None:
    name = _bench_database_name(url)
    admin = create_async_engine(
        _async_url(url.set(database="postgres")), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


def _marketgraph(args: Sequence[str], env: dict[str, str]) -> None:
    """Run one ``marketgraph`` CLI command, failing loudly with its output."""
    command = [str(Path(sys.executable).parent / "marketgraph"), *args]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command[1:])} failed:\n{done.stderr or done.stdout}")


def prepare_database(config: Config, env: dict[str, str]) -> float | None:
    """Make the bench database current and seeded; return seconds spent seeding, if any.

    Seeding 200,000 positions takes a while, so a database already holding exactly
    the requested size is reused unless --reseed asks for a fresh one.
    """
    url = make_url(config.database_url)
    _bench_database_name(url)
    wanted = (config.users, config.markets, config.positions)
    have = None if config.reseed else asyncio.run(_seeded_size(url))
    if have == wanted:
        _marketgraph(["migrate"], env)
        _note(f"reusing {url.database} ({_size_text(wanted)})")
        return None
    _note(f"creating {url.database} and seeding {_size_text(wanted)}")
    asyncio.run(_recreate_database(url))
    _marketgraph(["migrate"], env)
    started = time.perf_counter()
    # Seed data has a published password: `seed` refuses production, the server may run as it.
    _marketgraph(
        [
            "seed",
            f"--users={config.users}",
            f"--markets={config.markets}",
            f"--positions={config.positions}",
        ],
        {**env, "MARKETGRAPH_ENV": "development"},
    )
    seconds = time.perf_counter() - started
    _note(f"seeded in {seconds:.1f} s; vacuuming and analyzing")
    asyncio.run(_vacuum_analyze(url))
    return seconds


def _size_text(size: tuple[int, int, int]) -> str:
    return f"{size[0]:,} users, {size[1]:,} markets, {size[2]:,} positions"


def _note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- server process -------------------------------------------------------------------------


def server_env(config: Config) -> dict[str, str]:
    """The server's environment: quiet logs (one INFO line per operation costs CPU)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=config.database_url,
        JWT_SECRET=secrets.token_urlsafe(48),
        MARKETGRAPH_ENV=config.environment,
        LOG_LEVEL="WARNING",
        # The uncached read path at full speed: budgets would throttle one client's load, and
        # a response cache would answer every request but the first (bench/cache.py measures
        # that).
        RATE_LIMITS="off",
        RESPONSE_CACHE="off",
    )
    env.pop("REDIS_URL", None)
    if config.db_pool_size is not None:
        env["DB_POOL_SIZE"] = str(config.db_pool_size)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``marketgraph serve`` in its own process group, so stopping it reaches every worker."""

    def __init__(self, config: Config, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        command = [
            str(Path(sys.executable).parent / "marketgraph"),
            "serve",
            f"--host={HOST}",
            f"--port={self.port}",
            f"--workers={config.workers}",
        ]
        self._launch(command, env, log_path)

    def _launch(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        """Start ``command`` (serving on ``self.port``), its output to ``log_path``."""
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(f"the server exited with code {code}:\n{self.log_tail()}")

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            with suppress(OSError, ProtocolError, TimeoutError, asyncio.IncompleteReadError):
                status, _ = await http_get(self.port, "/health/ready")
                if status == 200:
                    self.check_owns_port()
                    return
            await asyncio.sleep(0.2)
        raise BenchError(f"the server was not ready within {READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """SIGTERM for a graceful shutdown, then SIGKILL to whatever of the group is left."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _note("the server did not stop in time; killing it")
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def cpu_seconds(self) -> float | None:
        """CPU time of the server and its worker processes so far (Linux /proc), or None."""
        try:
            return sum(_process_tree(self.process.pid).values()) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return None

    def check_owns_port(self) -> None:
        """Make sure the ready server is ours: the free port we picked could have been taken
        by another process between our probe and the server's bind (tests here start servers
        on spare ports too), and measuring someone else's server would be silently wrong."""
        try:
            ours = _listens(list(_process_tree(self.process.pid)), self.port)
        except OSError:
            return  # no /proc to ask: trust the port
        if not ours:
            raise BenchError(
                f"port {self.port} answers, but not from our server:\n{self.log_tail()}"
            )


def _process_tree(root: int) -> dict[int, int]:
    """CPU ticks (user + system) of ``root`` and its descendants, read from Linux /proc."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # Counted from the state field: ppid is 1, utime and stime are 11 and 12.
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    if root not in stats:
        raise OSError(f"no process {root}")
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return {pid: stats[pid][1] for pid in tree}


def _listens(pids: Sequence[int], port: int) -> bool:
    """Whether one of ``pids`` holds the socket listening on HOST:port (Linux /proc)."""
    wanted = f"{bytes(reversed(socket.inet_aton(HOST))).hex().upper()}:{port:04X}"
    inodes = {
        f"socket:[{parts[9]}]"
        for parts in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
        if parts[1] == wanted and parts[3] == "0A"
    }
    for pid in pids:
        with suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return True
    return False


@contextmanager
def running_server(config: Config, env: dict[str, str], log_path: Path) -> Iterator[Server]:
    """The server, stopped on every way out: success, error, Ctrl-C or SIGTERM."""
    server = Server(config, env, log_path)
    try:
        yield server
    finally:
        server.stop()


# --- HTTP/1.1 client ------------------------------------------------------------------------


@dataclass(slots=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


async def connect(port: int) -> Connection:
    reader, writer = await asyncio.open_connection(HOST, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Connection(reader, writer)


def post_request(port: int, body: bytes) -> bytes:
    """A complete POST /graphql request, encoded once and sent many times."""
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(conn: Connection, request: bytes) -> tuple[int, bytes, bool]:
    """Send one request, read one Content-Length response: (status, body, server closes)."""
    conn.writer.write(request)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise ProtocolError(f"unexpected status line {head[:40]!r}")
    status = int(head[9:12])
    length: int | None = None
    closing = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closing = value.strip().lower() == b"close"
    if length is None:
        raise ProtocolError("response without Content-Length")
    body = await conn.reader.readexactly(length)
    return status, body, closing


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = await connect(port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, body, _ = await exchange(conn, request)
        return status, body
    finally:
        conn.close()


async def post_graphql(port: int, query: str, variables: dict[str, Any] | None) -> Any:
    """One request outside the measured runs, parsed in full to check the answer's shape."""
    conn = await connect(port)
    try:
        payload = orjson.dumps({"query": query, "variables": variables})
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, body, _ = await exchange(conn, post_request(port, payload))
    finally:
        conn.close()
    if status != 200:
        raise BenchError(f"HTTP {status}: {body[:500]!r}")
    result = orjson.loads(body)
    if result.get("errors"):
        raise BenchError(f"GraphQL errors: {orjson.dumps(result['errors'])[:800]!r}")
    return result["data"]


async def sql_statements(port: int) -> float:
    """The server's statement counter (one process: with several workers it is one of them)."""
    status, body = await http_get(port, "/metrics")
    if status != 200:
        raise BenchError(f"GET /metrics answered {status}")
    for line in body.decode().splitlines():
        if line.startswith(STATEMENTS_METRIC + " "):
            return float(line.split()[1])
    raise BenchError(f"/metrics has no {STATEMENTS_METRIC}")


# --- load -----------------------------------------------------------------------------------


async def _worker(
    port: int, requests: Sequence[bytes], first: int, deadline: float, stats: LoadStats
) -> None:
    """One keep-alive connection sending requests back to back until the deadline."""
    conn: Connection | None = None
    turn = first
    clock = time.perf_counter
    try:
        while clock() < deadline:
            request = requests[turn % len(requests)]
            turn += 1
            started = clock()
            try:
                if conn is None:
                    conn = await connect(port)
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    status, body, closing = await exchange(conn, request)
            except (
                OSError,
                TimeoutError,
                ValueError,
                ProtocolError,
                asyncio.IncompleteReadError,
            ) as error:
                stats.fail(type(error).__name__, str(error)[:200])
                if conn is not None:
                    conn.close()
                    conn = None
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            stats.responses += 1
            if status != 200:
                stats.fail(f"HTTP {status}", body[:300].decode(errors="replace"))
            elif ERRORS_KEY in body:
                stats.fail("GraphQL errors", body[:300].decode(errors="replace"))
            else:
                stats.latencies.append(clock() - started)
            if closing:
                conn.close()
                conn = None
    finally:
        if conn is not None:
            conn.close()


async def run_load(
    port: int, requests: Sequence[bytes], concurrency: int, seconds: float
) -> tuple[LoadStats, float]:
    """Drive ``concurrency`` connections for ``seconds``; return the stats and the wall time.

    No request starts after the deadline; the ones in flight then are waited for
    (each bounded by REQUEST_TIMEOUT), and the wall time includes them.
    """
    stats = LoadStats()
    started = time.perf_counter()
    deadline = started + seconds
    async with asyncio.TaskGroup() as group:
        for index in range(concurrency):
            group.create_task(_worker(port, requests, index, deadline, stats))
    return stats, time.perf_counter() - started


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values known (None: a figure a run could not measure)."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- queries --------------------------------------------------------------------------------


def _check_markets(data: Any, with_children: bool) -> list[str]:
    """Check a Q1/Q2 answer has the 20 markets (and their children); return their ids."""
    nodes = data["markets"]["nodes"]
    if len(nodes) != 20:
        raise BenchError(f"expected 20 active markets, got {len(nodes)}")
    if with_children:
        for node in nodes:
            if not node["creator"]["displayName"] or not node["positions"]["nodes"]:
                raise BenchError(f"market {node['id']} came back without creator or positions")
            if not all(p["user"]["displayName"] for p in node["positions"]["nodes"]):
                raise BenchError(f"market {node['id']} has a position without its user")
    return [str(node["id"]) for node in nodes]


async def build_requests(port: int, names: Sequence[str]) -> dict[str, list[bytes]]:
    """Check each query's answer once and pre-encode the bytes the load sends.

    Q3 rotates through the 20 market ids Q1 returns, so it is not one cached row.
    """
    ids = _check_markets(await post_graphql(port, QUERIES["Q1"], None), with_children=False)
    bodies: dict[str, list[dict[str, Any]]] = {
        "Q1": [{"query": QUERIES["Q1"]}],
        "Q2": [{"query": QUERIES["Q2"]}],
        "Q3": [{"query": QUERIES["Q3"], "variables": {"id": market_id}} for market_id in ids],
    }
    if "Q2" in names:
        _check_markets(await post_graphql(port, QUERIES["Q2"], None), with_children=True)
    if "Q3" in names:
        for market_id in ids:
            market = (await post_graphql(port, QUERIES["Q3"], {"id": market_id}))["market"]
            if market is None or market["id"] != market_id or not market["creator"]:
                raise BenchError(f"Q3 for {market_id} returned {market!r}")
    return {
        name: [post_request(port, orjson.dumps(body)) for body in bodies[name]] for name in names
    }


async def bench_query(
    server: Server, config: Config, name: str, requests: list[bytes]
) -> QueryResult:
    """Warm up, then measure one query; statements come from the server's counter delta."""
    warm, _ = await run_load(server.port, requests, config.concurrency, config.warmup)
    if warm.failures:
        _note(f"{name} warm-up failures: {dict(warm.failures)}")
    server.check_alive()
    statements_before = await sql_statements(server.port)
    cpu_before = server.cpu_seconds()
    client_before = time.process_time()
    stats, seconds = await run_load(server.port, requests, config.concurrency, config.duration)
    client_cpu = time.process_time() - client_before
    cpu_after = server.cpu_seconds()
    server.check_alive()
    statements = await sql_statements(server.port) - statements_before
    latencies = sorted(stats.latencies)
    ok = len(latencies)
    return QueryResult(
        query=name,
        requests_per_second=ok / seconds,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        statements_per_request=(
            statements / stats.responses if config.workers == 1 and stats.responses else None
        ),
        responses=stats.responses,
        ok=ok,
        errors=sum(stats.failures.values()),
        seconds=seconds,
        server_cpu_percent=(
            None
            if cpu_before is None or cpu_after is None
            else 100 * (cpu_after - cpu_before) / seconds
        ),
        client_cpu_percent=100 * client_cpu / seconds,
        failures=dict(stats.failures),
        error_samples=stats.samples,
    )


async def bench_all(server: Server, config: Config) -> list[QueryResult]:
    await server.wait_ready()
    requests = await build_requests(server.port, config.only)
    results = []
    for name in config.only:
        _note(f"running {name} for {config.duration:g} s at concurrency {config.concurrency}")
        results.append(await bench_query(server, config, name, requests[name]))
    return results


# --- report ---------------------------------------------------------------------------------


def render_table(results: Sequence[QueryResult]) -> str:
    header = (
        f"{'query':<6}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'SQL/req':>10}"
        f"{'requests':>10}{'errors':>8}{'srv CPU':>9}{'cli CPU':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        statements = (
            "n/a" if r.statements_per_request is None else f"{r.statements_per_request:.2f}"
        )
        server_cpu = "n/a" if r.server_cpu_percent is None else f"{r.server_cpu_percent:.0f}%"
        lines.append(
            f"{r.query:<6}{r.requests_per_second:>10.1f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
            f"{statements:>10}{r.responses:>10}{r.errors:>8}{server_cpu:>9}"
            f"{r.client_cpu_percent:>8.0f}%"
        )
    return "\n".join(lines)


def render_failures(results: Sequence[QueryResult]) -> str:
    lines = []
    for r in results:
        if r.errors:
            lines.append(f"{r.query} failures: {r.failures}")
            lines.extend(f"  {sample}" for sample in r.error_samples)
    return "\n".join(lines)


def _git_revision() -> str | None:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def save_results(
    config: Config, results: Sequence[QueryResult], seed_seconds: float | None, stamp: str
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stamp}.json"
    document = {
        "started": stamp,
        "revision": _git_revision(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "config": asdict(config),
        "seed_seconds": seed_seconds,
        "results": [asdict(r) for r in results],
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path


# --- entry point ----------------------------------------------------------------------------


def _query_list(raw: str) -> tuple[str, ...]:
    names = tuple(name.strip().upper() for name in raw.split(",") if name.strip())
    unknown = [name for name in names if name not in QUERIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(QUERIES)}")
    return names


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return parse


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=_positive(float), default=10.0, help="seconds a query")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each query")
    parser.add_argument("--concurrency", type=_positive(int), default=32, help="connections")
    parser.add_argument("--workers", type=_positive(int), default=1, help="server processes")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--reseed", action="store_true", help="drop and recreate the database")
    parser.add_argument("--users", type=_positive(int), default=1000)
    parser.add_argument("--markets", type=_positive(int), default=10000)
    parser.add_argument("--positions", type=_positive(int), default=200000)
    parser.add_argument("--only", type=_query_list, default=tuple(QUERIES), help="e.g. Q1,Q3")
    parser.add_argument(
        "--environment", choices=("production", "development"), default="production"
    )
    parser.add_argument("--db-pool-size", type=_positive(int), default=None)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    return Config(
        duration=args.duration,
        warmup=max(0.0, args.warmup),
        concurrency=args.concurrency,
        workers=args.workers,
        database_url=args.database_url,
        reseed=args.reseed,
        users=args.users,
        markets=args.markets,
        positions=args.positions,
        only=args.only,
        environment=args.environment,
        db_pool_size=args.db_pool_size,
        save=not args.no_save,
    )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: it makes the load generator cheaper, so it steals less CPU."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwind through the finally blocks that stop the server


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    # Explicitly, because a shell starting us in the background ignores SIGINT for us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    env = server_env(config)
    try:
        seed_seconds = prepare_database(config, env)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        with (
            running_server(config, env, RESULTS_DIR / f"{stamp}-server.log") as server,
            asyncio.Runner(loop_factory=_loop_factory()) as runner,
        ):
            results = runner.run(bench_all(server, config))
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the server was stopped", file=sys.stderr)
        return 130
    print(
        f"marketgraph bench: {config.duration:g} s per query, concurrency {config.concurrency},"
        f" {config.workers} server process(es), {config.environment},"
        f" {_size_text((config.users, config.markets, config.positions))}"
    )
    print(render_table(results))
    failures = render_failures(results)
    if failures:
        print(failures)
    if config.save:
        _note(f"results written to {save_results(config, results, seed_seconds, stamp)}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
