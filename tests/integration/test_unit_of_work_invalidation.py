"""The unit of work invalidates what its repositories changed, once committed, and only then;
and the registry of trusted documents picks up new registrations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.changes import MARKETS, Kind, Relation, entity_tag, relation_tag
from domain.entities import LedgerKind, Outcome, Trade, TradeSide
from domain.ports import TrustedDocument
from graph.documents import DocumentLimits, Documents
from graph.persisted import Registry, sha256_of
from graph.schema import schema
from infra.db.migrate import upgrade
from infra.db.trusted import SqlTrustedDocuments
from infra.db.uow import SqlUnitOfWork
from tests.integration.test_repositories import NOW, new_market, new_user, stored_user

pytestmark = pytest.mark.embedded


class Recording:
    def __init__(self) -> None:
        self.calls: list[frozenset[str]] = []

    async def invalidate(self, tags: frozenset[str]) -> None:
        self.calls.append(tags)


class Boom(Exception):
    pass


@pytest.fixture
async def engine(db: AsyncEngine) -> AsyncEngine:
    await upgrade(db)
    return db


async def test_a_commit_invalidates_what_was_written_with_its_wildcards(
    engine: AsyncEngine,
) -> None:
    creator = await stored_user(engine, new_user())
    recording = Recording()
    market = new_market(creator.id)
    async with SqlUnitOfWork(engine, recording) as uow:
        await uow.markets.add(market)
        await uow.commit()
    [tags] = recording.calls
    assert tags == {
        entity_tag(Kind.MARKET, market.id),
        entity_tag(Kind.MARKET, None),
        MARKETS,
        relation_tag(Kind.USER, creator.id, Relation.MARKETS),
        relation_tag(Kind.USER, None, Relation.MARKETS),
    }


async def test_a_trade_invalidates_market_position_trades_user_and_ledger(
    engine: AsyncEngine,
) -> None:
    trader = await stored_user(engine, new_user())
    market = new_market(trader.id)
    async with SqlUnitOfWork(engine) as uow:
        await uow.markets.add(market)
        await uow.commit()
    recording = Recording()
    trade_id = uuid.uuid4()
    async with SqlUnitOfWork(engine, recording) as uow:
        await uow.users.debit(trader.id, Decimal(5))
        position = await uow.positions.add_shares(
            trader.id, market.id, Outcome.YES, Decimal(9), Decimal(5), NOW
        )
        await uow.trades.add(
            Trade(
                id=trade_id,
                user_id=trader.id,
                market_id=market.id,
                side=TradeSide.BUY,
                outcome=Outcome.YES,
                shares=Decimal(9),
                amount=Decimal(5),
                price_before=Decimal("0.5"),
                price_after=Decimal("0.52"),
                created_at=NOW,
            )
        )
        await uow.ledger.add(trader.id, Decimal(-5), LedgerKind.TRADE, NOW, market.id, trade_id)
        await uow.markets.apply_trade(
            market.id, Decimal(9), Decimal(0), Decimal(5), Decimal("0.52"), NOW
        )
        await uow.commit()
    [tags] = recording.calls
    expected = {
        entity_tag(Kind.USER, trader.id),
        entity_tag(Kind.MARKET, market.id),
        MARKETS,
        entity_tag(Kind.POSITION, position.id),
        entity_tag(Kind.TRADE, trade_id),
        relation_tag(Kind.MARKET, market.id, Relation.POSITIONS),
        relation_tag(Kind.MARKET, market.id, Relation.TRADES),
        relation_tag(Kind.USER, trader.id, Relation.POSITIONS),
        relation_tag(Kind.USER, trader.id, Relation.TRADES),
        relation_tag(Kind.USER, trader.id, Relation.LEDGER),
    }
    assert expected <= tags


async def test_a_rollback_invalidates_nothing(engine: AsyncEngine) -> None:
    creator = await stored_user(engine, new_user())
    recording = Recording()

    async def add_then_fail() -> None:
        async with SqlUnitOfWork(engine, recording) as uow:
            await uow.markets.add(new_market(creator.id))
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()
    async with SqlUnitOfWork(engine, recording) as uow:
        await uow.users.get(creator.id)
        await uow.commit()
    assert recording.calls == []


async def test_the_registry_picks_up_documents_registered_later(engine: AsyncEngine) -> None:
    clock = [0.0]
    source = SqlTrustedDocuments(engine)
    documents = Documents(schema._schema, DocumentLimits())
    registry = Registry(source, documents, refresh_seconds=5, clock=lambda: clock[0])
    await registry.load()
    body = f"query Later{uuid.uuid4().hex[:8]} {{ viewer {{ id }} }}"
    ident = f"later-{uuid.uuid4().hex[:8]}"
    assert registry.by_id(ident) is None
    await source.register([TrustedDocument(ident, body, sha256_of(body), None)], datetime.now(UTC))
    # Too soon after the last look: the database is not asked again.
    assert not await registry.refreshed()
    assert registry.by_id(ident) is None
    clock[0] = 6.0
    assert await registry.refreshed()
    found = registry.by_id(ident)
    assert found is not None
    assert registry.by_sha(sha256_of(body)) is found
    assert registry.by_id(f"sha256:{sha256_of(body)}") is found
    assert not found.prepared.errors
