"""The batch readers on the real databases: key order, gaps, keyset pages and tie-breaking."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import MarketStatus, Outcome
from domain.ports import CountKey
from domain.readmodel import MARKET, POSITION, USER, relation
from domain.reads import MarketFilter, MarketOrder, MarketSortField, PageRequest
from infra.db.engine import create_engine, read_engine
from infra.db.migrate import upgrade
from infra.db.readers import ChildPageKey, Readers
from infra.settings import Settings
from tests.api.readside import Seed, SeedMarket, SeedPosition, SeedUser, now

MARKET_POSITIONS = relation(MARKET, "positions")
USER_POSITIONS = relation(USER, "positions")
USER_MARKETS = relation(USER, "markets")


def everyone(ids: list[UUID]) -> list[CountKey]:
    """Count keys of whole lists (no single holder's)."""
    return [(i, None) for i in ids]


pytestmark = pytest.mark.embedded

# A walk that has not ended after this many pages is going round in circles.
MAX_PAGES = 50


@pytest.fixture
async def readers(db: AsyncEngine) -> Readers:
    # The embedded database is migrated by the server on start; without one, do it here.
    await upgrade(db)
    return Readers(read_engine(db))


@dataclass
class Data:
    creator: SeedUser
    holder: SeedUser
    markets: list[SeedMarket]
    positions: list[SeedPosition]

    def of_market(self, market: SeedMarket) -> list[SeedPosition]:
        mine = [p for p in self.positions if p.market_id == market.id]
        return sorted(mine, key=lambda p: (p.created_at, p.id))


@pytest.fixture
async def data(db: AsyncEngine, readers: Readers) -> Data:
    seed = Seed()
    creator = seed.user("Reader Creator")
    holder = seed.user("Reader Holder")
    traders = [seed.user(f"Reader Trader {i}") for i in range(6)]
    base = now() - timedelta(hours=5)
    token = uuid.uuid4().hex[:10]
    made = [seed.market(creator.id, f"reader {token} {i}", created_at=base) for i in range(4)]
    for i, market in enumerate(made[:3]):
        for j, trader in enumerate(traders[: 2 + 2 * i]):
            seed.buy(trader.id, market, Outcome.YES, Decimal(1), base + timedelta(seconds=j // 2))
        seed.buy(holder.id, market, Outcome.NO, Decimal(2), base + timedelta(minutes=i))
    await seed.save(db)
    return Data(creator, holder, made, seed.positions)


async def test_by_ids_answer_in_key_order_with_none_for_missing(
    readers: Readers, data: Data
) -> None:
    a, b, c, _ = data.markets
    missing = uuid.uuid4()
    found = await readers.objects(MARKET, [c.id, missing, a.id, c.id, b.id])
    assert [m.id if m else None for m in found] == [c.id, None, a.id, c.id, b.id]
    assert found[0] is not None
    assert found[0].name == c.name
    users = await readers.objects(USER, [data.holder.id, missing, data.creator.id])
    assert [u.display_name if u else None for u in users] == [
        "Reader Holder",
        None,
        "Reader Creator",
    ]
    position = data.positions[0]
    positions = await readers.objects(POSITION, [missing, position.id])
    assert positions[0] is None
    assert positions[1] is not None
    assert (positions[1].shares, positions[1].cost_basis) == (position.shares, position.cost_basis)


async def test_counts_answer_in_key_order_with_zero_for_missing(
    readers: Readers, data: Data
) -> None:
    a, b, c, d = data.markets
    missing = uuid.uuid4()
    counts = await readers.counts(MARKET_POSITIONS, everyone([d.id, c.id, missing, a.id, b.id]))
    expected = (
        [len(data.of_market(m)) for m in (d, c)] + [0] + [len(data.of_market(m)) for m in (a, b)]
    )
    assert counts == expected
    assert expected == [0, 7, 0, 3, 5]
    assert await readers.counts(USER_POSITIONS, everyone([missing, data.holder.id])) == [0, 3]
    assert await readers.counts(USER_MARKETS, everyone([data.creator.id, missing])) == [4, 0]


async def test_child_pages_answer_in_key_order(readers: Readers, data: Data) -> None:
    a, _, c, d = data.markets
    missing = uuid.uuid4()
    keys = [
        ChildPageKey(c.id, 3),
        ChildPageKey(missing, 3),
        ChildPageKey(a.id, 10),
        ChildPageKey(d.id, 3),
        ChildPageKey(c.id, 10),
    ]
    pages = await readers.pages(MARKET_POSITIONS, keys)
    expected = [
        data.of_market(c)[:3],
        [],
        data.of_market(a),
        [],
        data.of_market(c),
    ]
    assert [[p.id for _, p in page.items] for page in pages] == [
        [p.id for p in want] for want in expected
    ]
    assert [page.has_next for page in pages] == [True, False, False, False, False]
    assert {page.has_previous for page in pages} == {False}
    for page in pages:
        for key, position in page.items:
            assert key == (position.created_at, position.id)


async def test_child_pages_continue_after_a_key(readers: Readers, data: Data) -> None:
    c = data.markets[2]
    every = data.of_market(c)
    walked: list[UUID] = []
    after = None
    for _ in range(MAX_PAGES):
        [page] = await readers.pages(MARKET_POSITIONS, [ChildPageKey(c.id, 2, after)])
        assert page.has_previous is (after is not None)
        walked += [p.id for _, p in page.items]
        if not page.has_next:
            break
        after = page.items[-1][0]
    else:
        pytest.fail("paging never reached the end: a cursor does not advance")
    assert walked == [p.id for p in every]


async def test_child_pages_of_users_and_creators(readers: Readers, data: Data) -> None:
    [held] = await readers.pages(USER_POSITIONS, [ChildPageKey(data.holder.id, 2)])
    mine = sorted(
        (p for p in data.positions if p.user_id == data.holder.id),
        key=lambda p: (p.created_at, p.id),
    )
    assert [p.id for _, p in held.items] == [p.id for p in mine[:2]]
    assert held.has_next is True
    after = held.items[-1][0]
    [rest] = await readers.pages(USER_POSITIONS, [ChildPageKey(data.holder.id, 2, after)])
    assert [p.id for _, p in rest.items] == [mine[2].id]
    assert rest.has_next is False
    [made] = await readers.pages(USER_MARKETS, [ChildPageKey(data.creator.id, 3)])
    newest = sorted(data.markets, key=lambda m: (m.created_at, m.id), reverse=True)
    assert [m.id for _, m in made.items] == [m.id for m in newest[:3]]
    [older] = await readers.pages(
        USER_MARKETS, [ChildPageKey(data.creator.id, 3, made.items[-1][0])]
    )
    assert [m.id for _, m in older.items] == [newest[3].id]


# Tie-breaking by id: PostgreSQL compares uuid bytes, SQLite compares the 32-character
# hex text it stores. These ids share their first eight hex digits, so a bound id
# written with dashes ("aaaaaaaa-…") against stored text without them ("aaaaaaaa0…")
# would sort on the dash and break the walk.
TIE_IDS = [
    UUID("aaaaaaaa-0000-4000-8000-000000000001"),
    UUID("aaaaaaaa-f000-4000-8000-000000000000"),
    UUID("aaaaaaaa-1000-4000-8000-000000000000"),
    UUID("aaaaaaab-0000-4000-8000-000000000000"),
    UUID("0aaaaaaa-0000-4000-8000-000000000000"),
    UUID("aaaaaaaa-0000-4000-8000-00000000000a"),
    UUID("aaaaaaaa-0000-4000-8000-00000000000f"),
    UUID("ffffffff-ffff-4fff-bfff-ffffffffffff"),
    UUID("aaaaaaa9-ffff-4fff-bfff-ffffffffffff"),
]


@pytest.fixture(scope="module")
async def tied(settings: Settings) -> AsyncIterator[tuple[Readers, SeedUser, list[UUID]]]:
    """Markets equal in every sort field but the name, with the ids above."""
    engine = create_engine(settings)
    await upgrade(engine)
    seed = Seed()
    creator = seed.user("Tie Creator")
    at = now() - timedelta(days=1)
    token = uuid.uuid4().hex[:8]
    for i, ident in enumerate(TIE_IDS):
        market = seed.market(creator.id, f"tie {token} {i}", created_at=at, end_date=at)
        market.id = ident
    await seed.save(engine)
    yield Readers(read_engine(engine)), creator, sorted(TIE_IDS)
    await engine.dispose()


@pytest.mark.parametrize("field", list(MarketSortField))
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("size", [1, 2, 4])
async def test_keyset_pages_break_ties_by_id_both_ways(
    tied: tuple[Readers, SeedUser, list[UUID]],
    field: MarketSortField,
    descending: bool,
    size: int,
) -> None:
    readers, creator, ascending = tied
    where = MarketFilter(creator_id=creator.id)
    order = MarketOrder(field, descending)
    if field is MarketSortField.NAME:
        found = await readers.objects(MARKET, ascending)
        by_name = sorted((m for m in found if m), key=lambda m: m.name)
        expected = [m.id for m in by_name]
    else:
        expected = list(ascending)
    if descending:
        expected.reverse()
    forward: list[UUID] = []
    after = None
    for _ in range(MAX_PAGES):
        page = await readers.market_page(where, order, PageRequest(first=size, after=after))
        forward += [m.id for _, m in page.items]
        if not page.has_next:
            break
        after = page.items[-1][0]
    else:
        pytest.fail("paging never reached the end: a cursor does not advance")
    assert forward == expected
    backward: list[UUID] = []
    before = None
    for _ in range(MAX_PAGES):
        page = await readers.market_page(
            where, order, PageRequest(first=None, last=size, before=before)
        )
        backward = [m.id for _, m in page.items] + backward
        if not page.has_previous:
            break
        before = page.items[0][0]
    else:
        pytest.fail("paging never reached the end: a cursor does not advance")
    assert backward == expected
    assert await readers.market_count(where) == len(TIE_IDS)


async def test_market_count_applies_every_filter(readers: Readers, db: AsyncEngine) -> None:
    seed = Seed()
    creator = seed.user("Count Creator")
    at = now()
    made = [
        seed.market(
            creator.id,
            f"Count {uuid.uuid4().hex[:6]} {i}",
            status=MarketStatus.CLOSED if i % 2 else MarketStatus.ACTIVE,
            end_date=at + timedelta(days=i),
        )
        for i in range(1, 7)
    ]
    await seed.save(db)
    mine = MarketFilter(creator_id=creator.id)
    assert await readers.market_count(mine) == 6
    closed = MarketFilter(creator_id=creator.id, status=MarketStatus.CLOSED)
    assert await readers.market_count(closed) == 3
    window = MarketFilter(
        creator_id=creator.id, ends_after=made[0].end_date, ends_before=made[4].end_date
    )
    assert await readers.market_count(window) == 3
    named = MarketFilter(creator_id=creator.id, name_contains="COUNT")
    assert await readers.market_count(named) == 6
    assert await readers.market_count(MarketFilter(creator_id=uuid.uuid4())) == 0
