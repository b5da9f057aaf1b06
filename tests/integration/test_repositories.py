"""Repositories and the unit of work on the real databases: commit, rollback, conflicts."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import LedgerKind, Market, MarketStatus, Role, User
from domain.errors import Conflict
from domain.ports import NewUser
from infra.db.migrate import upgrade
from infra.db.models import ledger_entries, trades
from infra.db.uow import SqlUnitOfWork

pytestmark = pytest.mark.embedded

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


class Boom(Exception):
    """Raised inside a unit of work to leave it by an exception."""


@pytest.fixture
async def engine(db: AsyncEngine) -> AsyncEngine:
    await upgrade(db)
    return db


def new_user(email: str | None = None, balance: Decimal = Decimal("1000")) -> NewUser:
    user_id = uuid.uuid4()
    return NewUser(
        id=user_id,
        email=email or f"repo.{user_id.hex}@example.com",
        display_name="Repo",
        password_hash="$argon2id$placeholder",
        balance=balance,
        created_at=NOW,
    )


def new_market(creator_id: uuid.UUID, name: str | None = None) -> Market:
    market_id = uuid.uuid4()
    return Market(
        id=market_id,
        name=name or f"Repository market {market_id.hex}?",
        description=None,
        status=MarketStatus.ACTIVE,
        outcome=None,
        creator_id=creator_id,
        end_date=NOW + timedelta(days=30),
        liquidity=Decimal(100),
        q_yes=Decimal(0),
        q_no=Decimal(0),
        volume=Decimal(0),
        created_at=NOW,
        updated_at=NOW,
        yes_price=Decimal("0.5"),
    )


async def stored_user(engine: AsyncEngine, user: NewUser) -> User:
    """A user with the ledger entry that grants their balance, as sign-up writes them."""
    async with SqlUnitOfWork(engine) as uow:
        created = await uow.users.add(user)
        await uow.ledger.add(user.id, user.balance, LedgerKind.SIGNUP_GRANT, NOW)
        await uow.commit()
    return created


async def get_user(engine: AsyncEngine, user_id: uuid.UUID) -> User | None:
    async with SqlUnitOfWork(engine) as uow:
        return await uow.users.get(user_id)


async def get_market(engine: AsyncEngine, market_id: uuid.UUID) -> Market | None:
    async with SqlUnitOfWork(engine) as uow:
        return await uow.markets.get_for_update(market_id)


async def stored_market(engine: AsyncEngine, market: Market) -> Market:
    async with SqlUnitOfWork(engine) as uow:
        created = await uow.markets.add(market)
        await uow.commit()
    return created


async def test_a_committed_user_reads_back_with_defaults(engine: AsyncEngine) -> None:
    user = new_user()
    created = await stored_user(engine, user)

    expected = User(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=Role.USER,
        balance=user.balance,
        disabled=False,
        token_version=0,
        created_at=NOW,
    )
    assert created == expected
    assert await get_user(engine, user.id) == expected
    async with SqlUnitOfWork(engine) as uow:
        credentials = await uow.users.credentials_by_email(user.email)
        assert await uow.users.credentials_by_email(f"missing.{user.email}") is None
    assert credentials is not None
    assert (credentials.id, credentials.password_hash) == (user.id, user.password_hash)


async def test_leaving_without_commit_rolls_back(engine: AsyncEngine) -> None:
    user = new_user()
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(user)
        await uow.ledger.add(user.id, user.balance, LedgerKind.SIGNUP_GRANT, NOW)
    assert await get_user(engine, user.id) is None


async def test_an_exception_inside_rolls_everything_back(engine: AsyncEngine) -> None:
    user = new_user()

    async def sign_up_then_fail() -> None:
        async with SqlUnitOfWork(engine) as uow:
            await uow.users.add(user)
            await uow.ledger.add(user.id, user.balance, LedgerKind.SIGNUP_GRANT, NOW)
            raise Boom

    with pytest.raises(Boom):
        await sign_up_then_fail()
    assert await get_user(engine, user.id) is None
    async with engine.connect() as conn:
        entries = await conn.execute(
            sa.select(sa.func.count())
            .select_from(ledger_entries)
            .where(ledger_entries.c.user_id == user.id)
        )
        assert entries.scalar_one() == 0


async def test_a_taken_email_is_a_conflict_on_the_email(engine: AsyncEngine) -> None:
    first = await stored_user(engine, new_user())
    with pytest.raises(Conflict) as error:
        async with SqlUnitOfWork(engine) as uow:
            await uow.users.add(new_user(email=first.email))
    assert error.value.field == "email"


async def test_a_violation_other_than_uniqueness_is_not_a_conflict(engine: AsyncEngine) -> None:
    # A negative balance breaks a CHECK constraint: that is a bug to surface, not a taken email.
    with pytest.raises(IntegrityError):
        async with SqlUnitOfWork(engine) as uow:
            await uow.users.add(new_user(balance=Decimal("-1")))
    # A market of a user who does not exist breaks a foreign key, not the unique name.
    with pytest.raises(IntegrityError):
        async with SqlUnitOfWork(engine) as uow:
            await uow.markets.add(new_market(uuid.uuid4()))


async def test_markets_add_save_and_conflicts(engine: AsyncEngine) -> None:
    creator = await stored_user(engine, new_user())
    first = await stored_market(engine, new_market(creator.id))
    second = await stored_market(engine, new_market(creator.id))
    assert await get_market(engine, first.id) == first

    with pytest.raises(Conflict) as added:
        async with SqlUnitOfWork(engine) as uow:
            await uow.markets.add(new_market(creator.id, name=first.name))
    assert added.value.field == "name"

    with pytest.raises(Conflict) as saved:
        async with SqlUnitOfWork(engine) as uow:
            await uow.markets.save(dataclasses.replace(second, name=first.name))
    assert saved.value.field == "name"
    assert await get_market(engine, second.id) == second

    later = NOW + timedelta(hours=1)
    changed = dataclasses.replace(
        second,
        name=f"Renamed {second.id.hex}?",
        description="Now described.",
        end_date=NOW + timedelta(days=60),
        updated_at=later,
    )
    async with SqlUnitOfWork(engine) as uow:
        result = await uow.markets.save(changed)
        await uow.commit()
    assert result == changed
    assert await get_market(engine, second.id) == changed


async def test_save_writes_only_the_editable_fields(engine: AsyncEngine) -> None:
    creator = await stored_user(engine, new_user())
    market = await stored_market(engine, new_market(creator.id))
    tampered = dataclasses.replace(
        market, status=MarketStatus.RESOLVED, volume=Decimal(5), q_yes=Decimal(7), created_at=NOW
    )
    async with SqlUnitOfWork(engine) as uow:
        result = await uow.markets.save(tampered)
        await uow.commit()
    assert result == market


async def test_a_missing_market_is_none(engine: AsyncEngine) -> None:
    assert await get_market(engine, uuid.uuid4()) is None


async def test_has_trades_and_delete(engine: AsyncEngine) -> None:
    creator = await stored_user(engine, new_user())
    idle = await stored_market(engine, new_market(creator.id))
    traded = await stored_market(engine, new_market(creator.id))
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(trades).values(
                id=uuid.uuid4(),
                user_id=creator.id,
                market_id=traded.id,
                outcome="YES",
                side="BUY",
                shares=Decimal(1),
                amount=Decimal("0.50125208"),
                price_before=Decimal("0.5"),
                price_after=Decimal("0.50250000"),
                created_at=NOW,
            )
        )

    async with SqlUnitOfWork(engine) as uow:
        assert await uow.markets.has_trades(idle.id) is False
        assert await uow.markets.has_trades(traded.id) is True
        await uow.markets.delete(idle.id)
        await uow.commit()
    assert await get_market(engine, idle.id) is None
    assert await get_market(engine, traded.id) == traded


async def test_ledger_entries_are_written_in_the_unit_of_work(engine: AsyncEngine) -> None:
    user = new_user()
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(user)
        await uow.ledger.add(user.id, user.balance, LedgerKind.SIGNUP_GRANT, NOW)
        await uow.commit()
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                ledger_entries.c.amount, ledger_entries.c.kind, ledger_entries.c.created_at
            ).where(ledger_entries.c.user_id == user.id)
        )
        assert [tuple(row) for row in rows] == [(user.balance, LedgerKind.SIGNUP_GRANT, NOW)]
