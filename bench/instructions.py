"""Instructions per request of a cache hit and of the ceiling, counted by valgrind's callgrind.

bench/cache.py measures throughput, but on a shared two-core VM a server's speed drifts
by up to a third between runs: a 5% change on the hit path cannot be seen there. The
number of instructions a request executes barely moves between runs (about 1% here, from
how the replies of concurrent requests happen to batch). This runs each server of
bench/cache.py (``marketgraph serve`` on the Redis or in-process cache, and the ceiling)
under callgrind, counts only while ``--seconds`` of 32-connection load of one query run,
and divides by the responses.

Instructions are not time: ``sprintf`` runs many per nanosecond, a cache miss in the
CPU or a system call (the kernel is not counted) many nanoseconds per instruction. Use
this to see whether a change to the hit path removed work; confirm it with bench/cache.py.

    .venv/bin/python bench/instructions.py [--only Q1,Q3] [--seconds 15]
        [--modes cache-redis,cache-lru,ceiling]

Needs valgrind (Debian's ``valgrind`` package). Under it a server runs about fifty times
slower: each query takes a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# bench/run.py and bench/cache.py: the script's own directory is first on sys.path.
import cache
import orjson
import run as base

MODES = ("cache-redis", "cache-lru", "ceiling")
CACHE_SCRIPT = str(Path(cache.__file__).resolve())
# The load runs this long before counting starts: every answer is a hit by then.
WARMUP_SECONDS = 3.0
# Under callgrind a server starts in tens of seconds, not one.
READY_TIMEOUT = 300.0


class CountedServer(base.Server):
    """A server process under callgrind, counting nothing until ``count`` switches it on."""

    def __init__(self, command: Sequence[str], env: dict[str, str], out: Path) -> None:
        self.port = base.free_port()
        self._out = out
        counted = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/callgrind.%p",
            *(part.replace("{port}", str(self.port)) for part in command),
        ]
        self._launch(counted, env, out / "server.log")

    def control(self, *arguments: str) -> None:
        done = subprocess.run(
            ["callgrind_control", *arguments, str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise base.BenchError(f"callgrind_control {' '.join(arguments)}: {done.stderr}")

    def counted(self) -> int:
        """The instructions of the last dump (``callgrind_control -d``)."""
        dumps = sorted(self._out.glob(f"callgrind.{self.process.pid}.*"))
        if not dumps:
            raise base.BenchError("callgrind wrote no dump")
        for line in dumps[-1].read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        raise base.BenchError(f"no totals in {dumps[-1]}")


async def wait_ready(server: CountedServer) -> None:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    while True:
        try:
            await server.wait_ready()
            return
        except base.BenchError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            server.check_alive()


async def count(server: CountedServer, requests: list[bytes], seconds: float) -> tuple[int, int]:
    """Instructions and responses of ``seconds`` of load, after a warm-up."""
    stats, _ = await base.run_load(server.port, requests, 32, WARMUP_SECONDS)
    server.control("-i", "on")
    server.control("-z")
    stats, _ = await base.run_load(server.port, requests, 32, seconds)
    server.control("-d")
    server.control("-i", "off")
    failed = sum(stats.failures.values())
    if failed or not stats.responses:
        raise base.BenchError(f"{failed} failures, {stats.responses} responses: {stats.samples}")
    return server.counted(), stats.responses


async def run(config: cache.CacheConfig, seconds: float, out: Path) -> list[tuple[str, str, int]]:
    prefix = "mginstr:"
    marketgraph = str(Path(sys.executable).parent / "marketgraph")
    serve = [sys.executable, marketgraph, "serve", "--host=127.0.0.1", "--port={port}"]
    rows: list[tuple[str, str, int]] = []
    recorded: cache.Recorded | None = None
    for mode in config.modes:
        if mode == "ceiling":
            continue
        server = CountedServer(serve, cache.mode_env(config, mode, prefix), out)
        try:
            await wait_ready(server)
            requests = await base.build_requests(server.port, config.base.only)
            if recorded is None:
                recorded = await cache.record_answers(server.port, requests)
            for name in config.base.only:
                base._note(f"{mode} {name}: {seconds:g} s under callgrind")
                instructions, responses = await count(server, requests[name], seconds)
                rows.append((mode, name, instructions // responses))
        finally:
            server.stop()
    if "ceiling" in config.modes:
        if recorded is None:
            raise base.BenchError("the ceiling answers what a server answered: name one first")
        answers = out / "answers.json"
        answers.write_bytes(orjson.dumps(recorded))
        ceiling = CountedServer(
            [sys.executable, CACHE_SCRIPT, "--serve-ceiling", "{port}", str(answers)],
            cache.mode_env(config, "uncached", prefix),
            out,
        )
        try:
            await wait_ready(ceiling)
            requests = cache.ceiling_requests(ceiling.port, recorded)
            for name in config.base.only:
                base._note(f"ceiling {name}: {seconds:g} s under callgrind")
                instructions, responses = await count(ceiling, requests[name], seconds)
                rows.append(("ceiling", name, instructions // responses))
        finally:
            ceiling.stop()
    return rows


def render(rows: Sequence[tuple[str, str, int]]) -> str:
    ceiling = {query: counted for mode, query, counted in rows if mode == "ceiling"}
    header = f"{'mode':<13}{'query':<6}{'instructions/request':>22}{'ceiling / this':>16}"
    lines = [header, "-" * len(header)]
    for mode, query, counted in rows:
        top = ceiling.get(query)
        share = f"{100 * top / counted:.0f}%" if top else "n/a"
        lines.append(f"{mode:<13}{query:<6}{counted:>22,}{share:>16}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="counted load per query")
    parser.add_argument("--only", default="Q1,Q2,Q3")
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)}")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench: valgrind is not installed (Debian: apt install valgrind)", file=sys.stderr)
        return 1
    modes = [mode for mode in args.modes.split(",") if mode]
    if any(mode not in MODES for mode in modes):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    config = cache.parse_args(
        ["--only", args.only, "--modes", ",".join(modes), "--no-expiry", "--duration", "1"]
    )
    base.prepare_database(config.base, cache.mode_env(config, "uncached", "mginstr:"))
    with tempfile.TemporaryDirectory(prefix="mg-callgrind-") as out:
        try:
            rows = asyncio.run(run(config, args.seconds, Path(out)))
        except base.BenchError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        finally:
            cache._forget(config.redis_url, "mginstr:")
    print(
        f"marketgraph instructions per request (callgrind): {args.seconds:g} s of load per"
        " query at concurrency 32, 1 server process"
    )
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
