"""Single flight over the in-process store: a burst of identical misses runs the operation
once (twice when a write makes the first answer stale), and no request gets an answer
older than a write that was invalidated before it arrived.

The store is the real in-process one; the operation is a stand-in executor that reads
the world when it starts (the worst case: its answer is as old as it can be) and then
waits on a gate, so every request of a burst arrives while it is in flight. Executions
are counted, never timed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import GraphQLSchema

from domain.changes import Changes, Kind
from domain.ports import CachedResponse
from graph.analysis import OperationFigures
from graph.cache_policy import CacheHints
from graph.caching import CacheSettings, CacheStatus, ResponseCache, Served
from graph.documents import DocumentLimits, Documents
from graph.ids import to_global_id
from graph.schema import schema as strawberry_schema
from infra.cache import MemoryResponseStore

SCHEMA: GraphQLSchema = strawberry_schema._schema
QUERY = (
    "query ($word: String!) { markets(first: 10, filter: {nameContains: $word})"
    " { nodes { id name creator { id role } } } }"
)
BURST = 25


@dataclass(frozen=True)
class Answer:
    body: bytes
    data: dict[str, Any] | None
    actual: int
    cacheable: bool = True


@dataclass
class World:
    """What the operation reads: one market whose creator's role a write changes."""

    market: uuid.UUID = field(default_factory=uuid.uuid4)
    creator: uuid.UUID = field(default_factory=uuid.uuid4)
    role: str = "USER"
    executions: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> Answer:
        self.executions += 1
        role = self.role  # read as it starts: the oldest answer it could give
        await self.gate.wait()
        data = {
            "markets": {
                "nodes": [
                    {
                        "id": to_global_id("Market", self.market),
                        "name": "Will it fly?",
                        "creator": {"id": to_global_id("User", self.creator), "role": role},
                    }
                ]
            }
        }
        return Answer(orjson.dumps({"data": data}), data, 3)

    def creator_changed(self) -> frozenset[str]:
        changes = Changes()
        changes.entity(Kind.USER, self.creator)
        return changes.tags()


def operation() -> OperationFigures:
    prepared = Documents(SCHEMA, DocumentLimits(max_tokens=100_000)).prepare(QUERY)
    assert not prepared.errors, prepared.errors
    found = prepared.figures.operation(None)
    assert found is not None
    return found


class Setup:
    def __init__(self) -> None:
        self.store = MemoryResponseStore(max_entries=100, max_bytes=10_000_000)
        self.events: list[str] = []
        self.cache = ResponseCache(
            self.store,
            CacheHints(SCHEMA),
            CacheSettings(wait_seconds=60),
            observe=self.events.append,
        )
        self.operation = operation()
        self.policy = self.cache.policy(self.operation)
        self.variables = {"word": "fly"}
        base = self.cache.key_base("document", self.operation, self.variables)
        self.key = self.cache.key(base, self.policy, None)

    def ask(self, world: World) -> asyncio.Task[Served[Answer]]:
        return asyncio.ensure_future(
            self.cache.fetch(self.key, self.policy, self.operation, None, world.run)
        )

    def burst(self, world: World, count: int) -> list[asyncio.Task[Served[Answer]]]:
        return [self.ask(world) for _ in range(count)]

    def count(self, event: str) -> int:
        return self.events.count(event)

    def blocked(self, world: World) -> int:
        """Requests waiting for another's answer or running the operation themselves."""
        return self.count("wait") + world.executions


async def until(check: Callable[[], bool]) -> None:
    """Let the requests run until ``check`` holds (nothing here waits on I/O)."""
    for _ in range(1_000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the requests never got there")


def role(served: Served[Answer]) -> str:
    """The creator's role in the answer a request got, from the cache or its own run."""
    if served.entry is not None:
        body = served.entry.body
    else:
        assert served.answer is not None
        body = served.answer.body
    found: str = orjson.loads(body)["data"]["markets"]["nodes"][0]["creator"]["role"]
    return found


async def test_a_write_during_a_cold_burst_costs_one_more_execution_not_one_per_request() -> None:
    setup, world = Setup(), World()
    early = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == BURST)
    # A write commits and is invalidated while the first request still runs.
    world.role = "MODERATOR"
    await setup.store.invalidate(world.creator_changed())
    late = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == 2 * BURST)
    world.gate.set()
    answers = await asyncio.gather(*early, *late)
    assert world.executions == 2
    # Whoever arrived after the write sees it; those before may see either side of it.
    assert [role(served) for served in answers[BURST:]] == ["MODERATOR"] * BURST
    assert {role(served) for served in answers[:BURST]} <= {"USER", "MODERATOR"}
    statuses = [served.status for served in answers]
    assert statuses.count(CacheStatus.MISS) == 2
    # The second answer was read after the write: it is kept.
    again = await setup.ask(world)
    assert again.status is CacheStatus.HIT
    assert role(again) == "MODERATOR"
    assert world.executions == 2


async def test_requests_that_arrived_before_the_write_share_the_first_answer() -> None:
    setup, world = Setup(), World()
    early = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == BURST)
    world.role = "MODERATOR"
    await setup.store.invalidate(world.creator_changed())
    world.gate.set()
    answers = await asyncio.gather(*early)
    # The first answer could not be kept (the write came after its lookup), but every
    # waiter looked up before the write as well: it is as good for them as for the leader.
    assert world.executions == 1
    assert {role(served) for served in answers} == {"USER"}
    assert len(setup.store) == 0
    after = await setup.ask(world)
    assert after.status is CacheStatus.MISS
    assert role(after) == "MODERATOR"


async def test_an_unrelated_write_during_a_burst_does_not_split_it() -> None:
    setup, world = Setup(), World()
    early = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == BURST)
    # A write elsewhere advances the store's generation but touches nothing shown here.
    elsewhere = Changes()
    elsewhere.entity(Kind.USER, uuid.uuid4())
    await setup.store.invalidate(elsewhere.tags())
    late = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == 2 * BURST)
    world.gate.set()
    answers = await asyncio.gather(*early, *late)
    assert world.executions == 1
    assert [served.status for served in answers].count(CacheStatus.HIT) == 2 * BURST - 1
    assert len(setup.store) == 1


async def test_writes_that_keep_coming_still_cost_two_executions() -> None:
    """Each write lands while the answer is being made; the second flight began after every
    waiter arrived, so its answer serves them all even though it cannot be kept."""
    setup, world = Setup(), World()
    first = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == BURST)
    world.role = "MODERATOR"
    await setup.store.invalidate(world.creator_changed())
    late = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == 2 * BURST)
    # Release the first flight only; the second one starts and blocks on a new gate.
    gate, world.gate = world.gate, asyncio.Event()
    gate.set()
    await until(lambda: world.executions == 2)
    world.role = "ADMIN"
    await setup.store.invalidate(world.creator_changed())
    world.gate.set()
    answers = await asyncio.gather(*first, *late)
    assert world.executions == 2
    assert {role(served) for served in answers[BURST:]} == {"MODERATOR"}
    # Read before the second write, so not kept: the next request reads again.
    assert len(setup.store) == 0
    after = await setup.ask(world)
    assert role(after) == "ADMIN"


class SlowStore(MemoryResponseStore):
    """The in-process store, whose stores wait until the test lets them through (Redis
    storing an answer with hundreds of tags takes milliseconds)."""

    def __init__(self) -> None:
        super().__init__(max_entries=100, max_bytes=10_000_000)
        self.stores_may_finish = asyncio.Event()

    async def store(
        self, key: str, entry: CachedResponse, tags: frozenset[str], ttl_seconds: int
    ) -> bool:
        await self.stores_may_finish.wait()
        return await super().store(key, entry, tags, ttl_seconds)


async def test_waiters_are_answered_without_waiting_for_the_store() -> None:
    setup, world = Setup(), World()
    slow = setup.store = SlowStore()
    setup.cache = ResponseCache(
        slow, CacheHints(SCHEMA), CacheSettings(wait_seconds=60), observe=setup.events.append
    )
    burst = setup.burst(world, BURST)
    await until(lambda: setup.blocked(world) == BURST)
    world.gate.set()
    # Every waiter has its answer while the one that ran it is still storing it.
    await until(lambda: sum(task.done() for task in burst) == BURST - 1)
    [storing] = [task for task in burst if not task.done()]
    slow.stores_may_finish.set()
    leader = await storing
    assert leader.status is CacheStatus.MISS
    assert leader.entry is not None  # it was kept
    assert world.executions == 1
    assert [task.result().status for task in burst if task is not storing] == [CacheStatus.HIT] * (
        BURST - 1
    )
    assert {role(task.result()) for task in burst} == {"USER"}
