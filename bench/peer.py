"""marketgraph side by side with PostGraphile, on the same database, interleaved.

    .venv/bin/python bench/peer.py [--rounds 3] [--duration 10] [--concurrency 32]

Seeds (or reuses) the bench database of bench/run.py, installs PostGraphile
(``npm ci`` from bench/postgraphile/package-lock.json, so its whole dependency tree is
pinned) into .work/postgraphile/ (git-ignored) when it is not there or the lock
changed, and starts three servers over that database, each one process
pinned to the same CPU (``--cpu``): marketgraph as it is (queries compiled to
SQL), marketgraph with COMPILED_READS=off (the resolver path, the "before" of
the compiled path), and PostGraphile. Each round runs every query on every
server in turn, rotating which server goes first; the figures are the median
over rounds. It prints requests/s, p99 latency, the ratio to PostGraphile,
server CPU per request and database transactions per request (from
pg_stat_database, the same measure for every server; marketgraph also reports
the statements it sent).

The PostGraphile queries ask for the same rows and fields as Q1..Q3 in its
schema's terms (``allMarkets``, ``userByCreatorId``, ``positionsByMarketId``,
the Relay ``nodeId`` for our global ids); its defaults are kept except for the
production flags its documentation recommends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run

PEER_DIR = run.ROOT / ".work" / "postgraphile"
# package.json and package-lock.json that pin the peer and its whole dependency tree.
PEER_SOURCE = run.ROOT / "bench" / "postgraphile"
POSTGRAPHILE_VERSION = orjson.loads((PEER_SOURCE / "package.json").read_bytes())["dependencies"][
    "postgraphile"
]
PEER_QUERIES: dict[str, str] = {
    "Q1": (
        'query Q1 { allMarkets(first: 20, condition: {status: "ACTIVE"},'
        " orderBy: [VOLUME_DESC, ID_DESC]) { nodes { nodeId name volume endDate yesPrice } } }"
    ),
    "Q2": (
        'query Q2 { allMarkets(first: 20, condition: {status: "ACTIVE"},'
        " orderBy: [VOLUME_DESC, ID_DESC]) { nodes { nodeId name volume endDate yesPrice"
        " userByCreatorId { nodeId displayName }"
        " positionsByMarketId(first: 10, orderBy: [CREATED_AT_ASC, ID_ASC])"
        " { nodes { nodeId shares outcome userByUserId { nodeId displayName } } } } } }"
    ),
    "Q3": (
        "query Q3($id: UUID!) { marketById(id: $id) { nodeId name volume yesPrice"
        " userByCreatorId { nodeId displayName } } }"
    ),
}


@dataclass(frozen=True, slots=True)
class Measured:
    server: str
    query: str
    requests_per_second: float
    p99_ms: float
    cpu_ms_per_request: float | None
    transactions_per_request: float | None
    statements_per_request: float | None
    errors: int


# --- the peer ----------------------------------------------------------------------------------


def postgraphile_cli() -> Path:
    """PostGraphile's CLI, installed from the committed lock file when missing or stale.

    ``npm ci`` installs exactly the tree bench/postgraphile/package-lock.json records: a peer
    whose dependencies float could change the figures between two runs of the bench.
    """
    cli = PEER_DIR / "node_modules" / "postgraphile" / "cli.js"
    stamp = PEER_DIR / "package-lock.json"
    lock = PEER_SOURCE / "package-lock.json"
    if cli.exists() and stamp.exists() and stamp.read_bytes() == lock.read_bytes():
        return cli
    npm = shutil.which("npm")
    if npm is None:
        raise run.BenchError("npm is needed to install PostGraphile (Node 20 runs 4.14)")
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PEER_SOURCE / name, PEER_DIR / name)
    run._note(f"installing postgraphile@{POSTGRAPHILE_VERSION} into {PEER_DIR}")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(PEER_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not cli.exists():
        raise run.BenchError(f"npm ci of postgraphile failed:\n{done.stderr[-2000:]}")
    return cli


class Process:
    """A server process of ours or the peer's, in its own process group, pinned to a CPU."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_path: Path, cpu: int | None
    ) -> None:
        self.name = name
        self.port = int(command[command.index("--port") + 1])
        self._log = log_path.open("wb")
        self.log_path = log_path
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=run.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            self._log.flush()
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
            raise run.BenchError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def cpu_seconds(self) -> float | None:
        try:
            ticks = sum(run._process_tree(self.process.pid).values())
        except OSError:
            return None
        return ticks / os.sysconf("SC_CLK_TCK")

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + run.READY_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            with suppress(
                OSError,
                run.ProtocolError,
                run.BenchError,
                TimeoutError,
                asyncio.IncompleteReadError,
            ):
                await run.post_graphql(self.port, "{ __typename }", None)
                return
            await asyncio.sleep(0.2)
        raise run.BenchError(f"{self.name} was not ready within {run.READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=run.STOP_TIMEOUT)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()


@contextmanager
def started(process: Process) -> Iterator[Process]:
    try:
        yield process
    finally:
        process.stop()


def marketgraph(
    config: run.Config, env: dict[str, str], compiled: bool, log: Path, cpu: int | None
) -> Process:
    port = run.free_port()
    own = dict(env, COMPILED_READS="on" if compiled else "off")
    command = [
        str(Path(sys.executable).parent / "marketgraph"),
        "serve",
        f"--host={run.HOST}",
        "--port",
        str(port),
        "--workers=1",
    ]
    return Process("marketgraph" if compiled else "resolvers", command, own, log, cpu)


def postgraphile(config: run.Config, log: Path, cpu: int | None) -> Process:
    port = run.free_port()
    node = shutil.which("node")
    if node is None:
        raise run.BenchError("node is needed to run PostGraphile")
    url = make_url(config.database_url).set(drivername="postgresql")
    command = [
        node,
        str(postgraphile_cli()),
        "--connection",
        url.render_as_string(hide_password=False),
        "--host",
        run.HOST,
        "--port",
        str(port),
        "--disable-graphiql",
        "--disable-query-log",
        # The connections marketgraph's compiled reads get (DB_READ_POOL_SIZE's default).
        "--max-pool-size",
        "16",
    ]
    env = dict(os.environ, NODE_ENV="production")
    return Process("postgraphile", command, env, log, cpu)


# --- measuring -------------------------------------------------------------------------------


async def transactions(url: str) -> float:
    """Committed and rolled-back transactions of the bench database so far."""
    conn = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        # Backends flush their counters at most once a second; wait them out.
        await asyncio.sleep(1.1)
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return float(value)
    finally:
        await conn.close()


async def graphql(port: int, query: str, variables: dict[str, Any] | None) -> Any:
    return await run.post_graphql(port, query, variables)


async def requests_for(
    server: Process, names: Sequence[str], market_ids: Sequence[str], peer: bool
) -> dict[str, list[bytes]]:
    """The pre-encoded requests of each query, checked once against the server."""
    queries = PEER_QUERIES if peer else run.QUERIES
    bodies: dict[str, list[dict[str, Any]]] = {
        "Q1": [{"query": queries["Q1"]}],
        "Q2": [{"query": queries["Q2"]}],
        "Q3": [{"query": queries["Q3"], "variables": {"id": i}} for i in market_ids],
    }
    for name in names:
        for body in bodies[name]:
            data = await graphql(server.port, body["query"], body.get("variables"))
            rows = data.get("allMarkets") or data.get("markets")
            if name in ("Q1", "Q2") and len(rows["nodes"]) != 20:
                raise run.BenchError(f"{server.name} {name}: expected 20 markets")
            if name == "Q3" and not (data.get("marketById") or data.get("market")):
                raise run.BenchError(f"{server.name} {name}: no market")
    return {
        name: [run.post_request(server.port, orjson.dumps(b)) for b in bodies[name]]
        for name in names
    }


async def measure(
    server: Process, name: str, requests: list[bytes], config: run.Config, ours: bool
) -> Measured:
    await run.run_load(server.port, requests, config.concurrency, config.warmup)
    server.check_alive()
    statements_before = await run.sql_statements(server.port) if ours else None
    transactions_before = await transactions(config.database_url)
    cpu_before = server.cpu_seconds()
    stats, seconds = await run.run_load(server.port, requests, config.concurrency, config.duration)
    cpu_after = server.cpu_seconds()
    transactions_after = await transactions(config.database_url)
    statements_after = await run.sql_statements(server.port) if ours else None
    server.check_alive()
    latencies = sorted(stats.latencies)
    ok = len(latencies)
    return Measured(
        server=server.name,
        query=name,
        requests_per_second=ok / seconds,
        p99_ms=run.percentile(latencies, 0.99) * 1000,
        cpu_ms_per_request=(
            None
            if cpu_before is None or cpu_after is None or not ok
            else 1000 * (cpu_after - cpu_before) / ok
        ),
        # Warm-up and the idle servers add nothing: the others are quiet meanwhile.
        transactions_per_request=(transactions_after - transactions_before) / stats.responses
        if stats.responses
        else None,
        statements_per_request=(
            (statements_after - statements_before) / stats.responses
            if statements_before is not None and statements_after is not None and stats.responses
            else None
        ),
        errors=sum(stats.failures.values()),
    )


async def compare(servers: Sequence[Process], config: run.Config, rounds: int) -> list[Measured]:
    for server in servers:
        await server.wait_ready()
    ours = next(s for s in servers if s.name != "postgraphile")
    q1 = await graphql(ours.port, run.QUERIES["Q1"], None)
    gids = [node["id"] for node in q1["markets"]["nodes"]]
    raw = [_uuid_of(gid) for gid in gids]
    requests = {
        s.name: await requests_for(
            s, config.only, raw if s.name == "postgraphile" else gids, s.name == "postgraphile"
        )
        for s in servers
    }
    results: list[Measured] = []
    for number in range(rounds):
        order = list(servers[number % len(servers) :]) + list(servers[: number % len(servers)])
        for name in config.only:
            for server in order:
                run._note(f"round {number + 1}/{rounds}: {name} on {server.name}")
                results.append(
                    await measure(
                        server,
                        name,
                        requests[server.name][name],
                        config,
                        server.name != "postgraphile",
                    )
                )
    return results


def _uuid_of(gid: str) -> str:
    import base64

    raw = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()
    return raw.partition(":")[2]


# --- report ----------------------------------------------------------------------------------


def report(results: Sequence[Measured], names: Sequence[str], servers: Sequence[str]) -> str:
    """One row a query: the medians of every server, and marketgraph's ratio to the peer."""

    def cell(query: str, server: str, pick: Callable[[Measured], float | None]) -> float | None:
        return run.median([pick(r) for r in results if r.query == query and r.server == server])

    columns: list[tuple[str, Callable[[str], str]]] = []
    for server in servers:
        columns.append(
            (f"{server} req/s", _column(cell, server, lambda r: r.requests_per_second, 1))
        )
    if "postgraphile" in servers:

        def ratio(query: str) -> str:
            ours = cell(query, "marketgraph", lambda r: r.requests_per_second)
            theirs = cell(query, "postgraphile", lambda r: r.requests_per_second)
            return "n/a" if not ours or not theirs else f"{ours / theirs:.2f}x"

        columns.append(("vs postgraphile", ratio))
    for server in servers:
        columns.append((f"{server} p99 ms", _column(cell, server, lambda r: r.p99_ms, 1)))
    for server in servers:
        columns.append(
            (f"{server} CPU ms/req", _column(cell, server, lambda r: r.cpu_ms_per_request, 2))
        )
    for server in servers:
        columns.append(
            (f"{server} xact/req", _column(cell, server, lambda r: r.transactions_per_request, 2))
        )
    columns.append(
        ("marketgraph SQL/req", _column(cell, "marketgraph", lambda r: r.statements_per_request, 2))
    )
    widths = [max(len(title), 9) + 2 for title, _ in columns]
    lines = [
        f"{'query':<6}" + "".join(f"{t:>{w}}" for (t, _), w in zip(columns, widths, strict=True))
    ]
    lines.append("-" * len(lines[0]))
    for query in names:
        lines.append(
            f"{query:<6}"
            + "".join(f"{show(query):>{w}}" for (_, show), w in zip(columns, widths, strict=True))
        )
    errors = sum(r.errors for r in results)
    if errors:
        lines.append(f"errors: {errors} (failed requests are not counted in req/s)")
    return "\n".join(lines)


def _column(
    cell: Callable[[str, str, Callable[[Measured], float | None]], float | None],
    server: str,
    pick: Callable[[Measured], float | None],
    places: int,
) -> Callable[[str], str]:
    def show(query: str) -> str:
        value = cell(query, server, pick)
        return "n/a" if value is None else f"{value:.{places}f}"

    return show


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=run._positive(int), default=3)
    parser.add_argument("--no-before", action="store_true", help="skip the resolver-path server")
    parser.add_argument("--no-peer", action="store_true", help="skip PostGraphile")
    parser.add_argument(
        "--cpu", type=int, default=1, help="the CPU every server is pinned to (-1: none)"
    )
    args, rest = parser.parse_known_args(argv)
    config = replace(run.parse_args(rest), save=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, run._terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    env = run.server_env(config)
    cpu = None if args.cpu < 0 else args.cpu
    try:
        run.prepare_database(config, env)
        run.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack, asyncio.Runner(loop_factory=run._loop_factory()) as runner:
            servers = [
                stack.enter_context(
                    started(
                        marketgraph(config, env, True, run.RESULTS_DIR / f"{stamp}-mg.log", cpu)
                    )
                )
            ]
            if not args.no_before:
                log = run.RESULTS_DIR / f"{stamp}-resolvers.log"
                servers.append(
                    stack.enter_context(started(marketgraph(config, env, False, log, cpu)))
                )
            if not args.no_peer:
                log = run.RESULTS_DIR / f"{stamp}-postgraphile.log"
                servers.append(stack.enter_context(started(postgraphile(config, log, cpu))))
            results = runner.run(compare(servers, config, args.rounds))
    except run.BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the servers were stopped", file=sys.stderr)
        return 130
    names = [s.name for s in servers]
    print(
        f"side by side: {args.rounds} rounds x {config.duration:g} s per query and server,"
        f" concurrency {config.concurrency}, one process each pinned to CPU {cpu},"
        f" {run._size_text((config.users, config.markets, config.positions))}; medians"
    )
    print(report(results, config.only, names))
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
