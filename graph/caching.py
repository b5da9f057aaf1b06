"""The response cache at the HTTP edge: keys, single flight, and HTTP caching headers.

Where it sits (``graph.http.endpoint``): after the cost analysis and
authentication, in front of both executors. A hit is charged like a miss: its
requested cost must fit the client's budget (taken before the answer is known,
the take sent with the lookup), and all but the stored response's actual cost
is refunded, as a miss's is after it ran, so what a client pays never depends on what others
asked before, and the budget cannot probe the cache: refused or not, a hit
and a miss get the same answer.

* The key is the SHA-256 of the schema's fingerprint (schema and the settings
  that shape answers), the document's SHA-256, the operation's name, its
  variables (canonical JSON) and the scope: ``public``, the viewer's user id
  for a ``PRIVATE`` policy, or ``anonymous``.
* What is kept is the response without ``extensions``; each request writes
  its own cost, budget and cache status around it. Only query responses
  without errors are kept, each with the tags of what it shows
  (``graph.cache_tags``; a ``PRIVATE`` one also carries its viewer's user tag,
  so a change of the viewer's role or account drops it).
* Single flight: identical misses in one process run the operation once; the
  others wait (at most ``CACHE_WAIT_SECONDS``) for its answer and take it when
  it holds every write they must see (``_Flight.serves``). When a write was
  invalidated between the flight's lookup and theirs, it may not: those
  waiters start one new flight together, whose answer is read after all of
  them arrived. A burst runs the operation at most twice, whatever writes land
  meanwhile, and no request gets an answer older than a write invalidated
  before it arrived. Past its max age an entry is served for
  ``CACHE_STALE_SECONDS`` more to everyone but the one request that refreshes
  it, so an expiry under load sends one request to the database, not all of
  them.
* No store, a store that cannot be reached, or an uncacheable policy:
  ``BYPASS``, and the operation simply runs.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import orjson

from domain.changes import Kind, entity_tag
from domain.ports import CachedResponse, ResponseStore
from graph.analysis import OperationFigures
from graph.cache_policy import CacheHints, Policy
from graph.cache_tags import TagRules

DEFAULT_STALE_SECONDS = 10
DEFAULT_WAIT_SECONDS = 5.0
DEFAULT_MAX_ENTRY_BYTES = 1_000_000
VARY = "Accept, Authorization"


class CacheStatus(enum.StrEnum):
    """What the cache did for a request (``extensions.cache``)."""

    HIT = "HIT"
    MISS = "MISS"
    BYPASS = "BYPASS"


class Answer(Protocol):
    """What an executor produced: the response without extensions, and what it says."""

    @property
    def body(self) -> bytes: ...

    @property
    def data(self) -> Mapping[str, Any] | None: ...

    @property
    def actual(self) -> int: ...

    @property
    def cacheable(self) -> bool:
        """No errors: the answer any identical request would get."""


A = TypeVar("A", bound=Answer)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    stale_seconds: int = DEFAULT_STALE_SECONDS
    wait_seconds: float = DEFAULT_WAIT_SECONDS
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    # Changes whenever a cached answer to the same request could change shape.
    fingerprint: str = ""


@dataclass(slots=True)  # a value, not frozen only for speed (one per cached query)
class Served(Generic[A]):
    """The cache's part in one request: a stored ``entry`` to answer from (a hit), or the
    ``answer`` this request executed, with its ETag when it is cacheable."""

    status: CacheStatus
    entry: CachedResponse | None = None
    answer: A | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a flight has for the requests waiting on it: an answer, and the generation
    of the lookup the flight made before reading it."""

    entry: CachedResponse
    generation: int


class _Flight:
    """One request running an operation that identical requests wait for."""

    def __init__(self, began: int) -> None:
        # Its place among arrivals (``ResponseCache._order``): it reads after every request
        # that arrived before it began.
        self.began = began
        self.result: asyncio.Future[_Outcome | None] = asyncio.get_running_loop().create_future()

    def finish(self, outcome: _Outcome | None) -> None:
        if not self.result.done():
            self.result.set_result(outcome)

    def serves(self, outcome: _Outcome, arrival: int, generation: int) -> bool:
        """Whether a request that arrived at ``arrival`` and looked the store up at
        ``generation`` may take this flight's answer: every write it must see (those
        invalidated before it arrived) is in it, because

        * its lookup was no later (in generations) than the flight's: those writes had
          been invalidated before the flight read; or
        * the flight began after it arrived, and so read after it arrived.

        Whether the answer was kept does not count: an entry stored and then dropped by
        an invalidation before this request's lookup would pass for current.
        """
        return generation <= outcome.generation or self.began > arrival


Observe = Callable[[str], None]


def _ignore(_event: str) -> None:
    return None


def _keep(_outcome: _Outcome) -> None:
    return None


def etag_of(body: bytes) -> str:
    """A weak validator: equal for equal data (the extensions around it differ per request)."""
    return 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def fingerprint(schema_sdl: str, *settings: object) -> str:
    raw = "\n".join([schema_sdl, *map(repr, settings)]).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def key_scope(policy: Policy, viewer: UUID | None) -> str:
    """Who may share an entry: everyone (PUBLIC), anonymous callers, or one signed-in user."""
    if not policy.private:
        return "public"
    if viewer is None:
        return "anonymous"
    return f"user:{viewer}"


class ResponseCache:
    def __init__(
        self,
        store: ResponseStore | None,
        hints: CacheHints,
        settings: CacheSettings,
        observe: Observe = _ignore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._hints = hints
        self._tags = TagRules(hints.schema)
        self._settings = settings
        self._observe = observe
        self._clock = clock
        self._flights: dict[str, _Flight] = {}
        # Orders arrivals and flights (see ``_Flight.serves``).
        self._order = itertools.count(1)

    @property
    def enabled(self) -> bool:
        return self._store is not None

    def policy(self, operation: OperationFigures) -> Policy:
        return self._hints.policy(operation)

    def key_base(
        self,
        document_sha256: str,
        operation: OperationFigures,
        variables: Mapping[str, Any] | None,
    ) -> bytes:
        """What an entry's key takes from the request: the document, the operation and the
        variables it declares (other variables change nothing in the answer)."""
        names = [
            definition.variable.name.value
            for definition in operation.node.variable_definitions or ()
        ]
        given = {name: variables[name] for name in names if variables and name in variables}
        return b"\0".join(
            (
                self._settings.fingerprint.encode(),
                document_sha256.encode(),
                (operation.name or "").encode(),
                orjson.dumps(given, option=orjson.OPT_SORT_KEYS),
            )
        )

    def key(self, base: bytes, policy: Policy, viewer: UUID | None) -> str:
        """The entry's key; PRIVATE policies are keyed by viewer (anonymous is one viewer)."""
        return self.scoped_key(base, key_scope(policy, viewer))

    def scoped_key(self, base: bytes, scope: str) -> str:
        raw = base + b"\0" + scope.encode()
        return f"{self._settings.fingerprint}:{hashlib.sha256(raw).hexdigest()}"

    async def fetch(
        self,
        key: str,
        policy: Policy,
        operation: OperationFigures,
        viewer: UUID | None,
        run: Callable[[], Awaitable[A]],
    ) -> Served[A]:
        """Answer from the cache, from an identical request in flight, or by ``run()``.

        ``run`` raises what the executor raises (an outage, a refused request);
        requests waiting on it then run the operation themselves.
        """
        store = self._store
        if store is None or not policy.cacheable:
            return await self._bypass(policy, run)
        arrival = next(self._order)
        found = await store.lookup(key)
        if found is None:
            return await self._bypass(policy, run)
        entry = found.entry
        if entry is not None:
            if self._clock() < entry.fresh_until or key in self._flights:
                if self._clock() >= entry.fresh_until:
                    self._observe("stale")
                self._observe("hit")
                return Served(CacheStatus.HIT, entry=entry)
            return await self._lead(key, found.generation, policy, operation, viewer, run)
        deadline = asyncio.get_running_loop().time() + self._settings.wait_seconds
        renew = False
        while (flight := self._flights.get(key)) is not None:
            self._observe("wait")
            outcome = await self._wait(flight, deadline)
            if outcome is None:
                # The request ahead failed, gave an answer no one may share (errors), or
                # the wait ran out: run it here.
                served, _ = await self._miss(key, found.generation, policy, operation, viewer, run)
                return served
            if flight.serves(outcome, arrival, found.generation):
                self._observe("hit")
                return Served(CacheStatus.HIT, entry=outcome.entry)
            # A write this request must see may have been invalidated after that answer was
            # read. Any flight from now on begins after this request arrived: the first
            # waiter to get here leads one, the others take its answer.
            renew = True
        generation = None if renew else found.generation
        return await self._lead(key, generation, policy, operation, viewer, run)

    async def _wait(self, flight: _Flight, deadline: float) -> _Outcome | None:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(asyncio.shield(flight.result), max(0.0, remaining))
        except TimeoutError:
            return None

    async def _bypass(self, policy: Policy, run: Callable[[], Awaitable[A]]) -> Served[A]:
        """Run without the cache; a cacheable answer still gets its ETag (HTTP caching does
        not depend on this cache)."""
        self._observe("bypass")
        answer = await run()
        cacheable = policy.cacheable and answer.cacheable
        return Served(
            CacheStatus.BYPASS, answer=answer, etag=etag_of(answer.body) if cacheable else None
        )

    async def _lead(
        self,
        key: str,
        generation: int | None,
        policy: Policy,
        operation: OperationFigures,
        viewer: UUID | None,
        run: Callable[[], Awaitable[A]],
    ) -> Served[A]:
        """Run the operation for every identical request that arrives meanwhile.

        ``generation`` None: look the store up first, once the flight is in place (so the
        requests that renew behind it wait for it): what it finds there, or else reads, is
        current for every request that arrived before it began.
        """
        flight = self._flights[key] = _Flight(next(self._order))
        outcome: _Outcome | None = None
        try:
            if generation is None:
                assert self._store is not None
                found = await self._store.lookup(key)
                if found is None:
                    return await self._bypass(policy, run)
                if found.entry is not None and self._clock() < found.entry.fresh_until:
                    outcome = _Outcome(found.entry, found.generation)
                    self._observe("hit")
                    return Served(CacheStatus.HIT, entry=found.entry)
                generation = found.generation
            served, outcome = await self._miss(
                key, generation, policy, operation, viewer, run, flight.finish
            )
            return served
        finally:
            flight.finish(outcome)
            if self._flights.get(key) is flight:
                del self._flights[key]

    async def _miss(
        self,
        key: str,
        generation: int,
        policy: Policy,
        operation: OperationFigures,
        viewer: UUID | None,
        run: Callable[[], Awaitable[A]],
        publish: Callable[[_Outcome], None] = _keep,
    ) -> tuple[Served[A], _Outcome | None]:
        """Run the operation and keep its answer if it may be; also what identical requests
        waiting for it may take (None: nothing, it has errors), handed to ``publish`` as
        soon as it is known: they need not wait for the store (Redis may take
        milliseconds over an answer with hundreds of tags)."""
        self._observe("miss")
        answer = await run()
        if not answer.cacheable:
            return Served(CacheStatus.MISS, answer=answer), None
        etag = etag_of(answer.body)
        now = self._clock()
        entry = CachedResponse(
            body=answer.body,
            actual_cost=answer.actual,
            etag=etag,
            stored_at=now,
            fresh_until=now + policy.max_age,
            generation=generation,
        )
        outcome = _Outcome(entry, generation)
        publish(outcome)
        stored = False
        if len(answer.body) <= self._settings.max_entry_bytes and self._store is not None:
            tags = self._tags.collect(operation, answer.data or {})
            if policy.private and viewer is not None:
                tags.add(entity_tag(Kind.USER, viewer))
            stored = await self._store.store(
                key, entry, frozenset(tags), policy.max_age + self._settings.stale_seconds
            )
        served = Served(CacheStatus.MISS, entry=entry if stored else None, answer=answer, etag=etag)
        return served, outcome


_VARY = (b"vary", VARY.encode())
_NO_STORE = (b"cache-control", b"no-store")


def cache_headers(policy: Policy, etag: str | None, max_age: int) -> list[tuple[bytes, bytes]]:
    """``Cache-Control``, ``ETag`` and ``Vary`` of a query response, as uvicorn sends them
    (``etag`` None: not cacheable, ``no-store``); ``public`` only when it is the same for
    every caller, extensions and headers included (``Policy.http_shared``)."""
    if etag is None or not policy.cacheable:
        return [_NO_STORE, _VARY]
    return [
        (b"cache-control", _cache_control(policy.http_shared, max(0, max_age))),
        (b"etag", etag.encode("latin-1")),
        _VARY,
    ]


@lru_cache(maxsize=512)
def _cache_control(shared: bool, max_age: int) -> bytes:
    # A hit's max age is the seconds its entry has left: a few hundred values at most.
    return f"{'public' if shared else 'private'}, max-age={max_age}".encode()


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names the ETag (weak comparison, RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False
