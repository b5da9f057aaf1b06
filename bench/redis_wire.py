"""CPU per Redis command on the request path: infra.redis_wire.RedisWire next to redis-py.

Runs the response cache's kind of commands (an MGET of a 3 kB entry and two missing
keys, an EVALSHA of a small script, and both in one write) from ``--concurrency``
tasks on one uvloop event loop, as a server process would, and reports for each the
process's CPU time per command (``time.process_time``: this client's CPU only, Redis
runs in its own process) and commands per second. Then the same commands through
redis-py as the request path creates it (``infra.redis.create_redis``), for
comparison; ``--no-redis-py`` skips those.

    .venv/bin/python bench/redis_wire.py [--commands 40000] [--concurrency 32]
        [--redis-url redis://127.0.0.1:6379/0] [--no-redis-py]

Each command kind is warmed up first, then measured. Keys live under a random prefix
and are deleted at the end. Nothing else runs on the loop, so the figures are the
commands' own cost; run it on an otherwise idle machine and compare runs, not digits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import uvloop

from infra.redis import create_redis
from infra.redis_wire import RedisWire, Script

# A budget script's shape: one key, two arguments, a small array back.
SCRIPT = "return {1, tonumber(ARGV[1]), tonumber(ARGV[2])}"
WARM_UP = 100

Operation = Callable[[], Awaitable[object]]


async def measure(
    name: str, operation: Operation, commands: int, concurrency: int, per_operation: int = 1
) -> None:
    """Run ``operation`` about ``commands / per_operation`` times over ``concurrency`` tasks
    (it sends ``per_operation`` commands each time); print the CPU per command."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await operation()

    await asyncio.gather(*(worker(WARM_UP) for _ in range(concurrency)))
    per_worker = max(1, commands // (concurrency * per_operation))
    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    sent = per_worker * concurrency * per_operation
    print(
        f"{name:28} {1e6 * cpu / sent:7.1f} µs CPU/command {sent / wall:9.0f} commands/s",
        flush=True,
    )


async def main(url: str, commands: int, concurrency: int, redis_py: bool) -> None:
    prefix = f"mgbench:{uuid.uuid4().hex[:12]}:"
    entry, missing, floor, budget = (f"{prefix}{name}" for name in ("e", "seq", "floor", "b"))
    wire = RedisWire(url)
    script = Script(SCRIPT)
    try:
        await wire.connect()
        await wire.call("SET", entry, os.urandom(3000))
        await measure(
            "wire mget", lambda: wire.call("MGET", entry, missing, floor), commands, concurrency
        )
        await measure(
            "wire evalsha",
            lambda: wire.evalsha(script, (budget,), (1, 2)),
            commands,
            concurrency,
        )
        await measure(
            "wire calls(mget, evalsha)",
            lambda: wire.calls(
                ("MGET", entry, missing, floor), ("EVALSHA", script.sha, 1, budget, 1, 2)
            ),
            commands,
            concurrency,
            per_operation=2,
        )
        if redis_py:
            client = create_redis(url, pool_size=64)
            registered = client.register_script(SCRIPT)
            try:
                await measure(
                    "redis-py mget",
                    lambda: client.mget(entry, missing, floor),
                    commands,
                    concurrency,
                )
                await measure(
                    "redis-py evalsha",
                    lambda: registered(keys=[budget], args=[1, 2]),
                    commands,
                    concurrency,
                )
            finally:
                await client.aclose(close_connection_pool=True)
    finally:
        await wire.call("DEL", entry, missing, floor, budget)
        await wire.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=40000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--no-redis-py", action="store_true", help="measure RedisWire only")
    options = parser.parse_args()
    uvloop.run(
        main(options.redis_url, options.commands, options.concurrency, not options.no_redis_py)
    )


if __name__ == "__main__":
    cli()
