"""Column types and constraints on the migrated schema, on PostgreSQL and on SQLite.

Money stays exact and datetimes stay UTC on both databases, and
the enum and balance CHECK constraints exist on both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.migrate import upgrade
from infra.db.models import ledger_entries, markets, users
from infra.db.types import Money

pytestmark = pytest.mark.embedded

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


# Users these tests made: their rows hold arbitrary amounts (column tests, not money
# movements), so they are removed after each test and never reach the ledger check.
MADE: list[uuid.UUID] = []


@pytest.fixture
async def engine(db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    # A no-op on the already migrated PostgreSQL database; it migrates the SQLite
    # file when no live server has done so yet in this run.
    await upgrade(db)
    yield db
    made = list(MADE)
    MADE.clear()
    if made:
        async with db.begin() as conn:
            await conn.execute(sa.delete(ledger_entries).where(ledger_entries.c.user_id.in_(made)))
            await conn.execute(sa.delete(markets).where(markets.c.creator_id.in_(made)))
            await conn.execute(sa.delete(users).where(users.c.id.in_(made)))


async def add_user(engine: AsyncEngine, balance: Decimal = Decimal(0)) -> uuid.UUID:
    user_id = uuid.uuid4()
    MADE.append(user_id)
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(users).values(
                id=user_id,
                email=f"types.{user_id.hex}@example.com",
                display_name="Types",
                password_hash="not-a-hash",
                balance=balance,
                created_at=EPOCH,
            )
        )
    return user_id


async def add_market(engine: AsyncEngine, creator_id: uuid.UUID) -> uuid.UUID:
    market_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(markets).values(
                id=market_id,
                name=f"Types market {market_id.hex}?",
                status="ACTIVE",
                creator_id=creator_id,
                end_date=EPOCH + timedelta(days=30),
                liquidity=Decimal(100),
                q_yes=Decimal(0),
                q_no=Decimal(0),
                volume=Decimal(0),
                created_at=EPOCH,
                updated_at=EPOCH,
                yes_price=Decimal("0.5"),
            )
        )
    return market_id


async def add_entry(
    engine: AsyncEngine, user_id: uuid.UUID, amount: Decimal, at: datetime = EPOCH
) -> uuid.UUID:
    entry_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(ledger_entries).values(
                id=entry_id, user_id=user_id, amount=amount, kind="TRADE", created_at=at
            )
        )
    return entry_id


async def scalar(engine: AsyncEngine, query: sa.Select[Any]) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()


AMOUNTS = [
    "0",
    "0.00000001",
    "0.1",
    "12345.67890123",
    "-987.65432109",
    "12345678901.23456789",
    "92233720368.54775807",
    "-92233720368.54775808",
]


@pytest.mark.parametrize("raw", AMOUNTS)
async def test_money_round_trips_exactly(engine: AsyncEngine, raw: str) -> None:
    amount = Decimal(raw)
    user_id = await add_user(engine)
    entry_id = await add_entry(engine, user_id, amount)
    stored = await scalar(
        engine, sa.select(ledger_entries.c.amount).where(ledger_entries.c.id == entry_id)
    )
    assert isinstance(stored, Decimal)
    assert stored == amount


async def test_money_sums_exactly(engine: AsyncEngine) -> None:
    user_id = await add_user(engine)
    parts = [Decimal("0.1"), Decimal("0.2"), Decimal("0.00000001"), Decimal("-0.3")]
    for part in parts:
        await add_entry(engine, user_id, part)
    total = await scalar(
        engine,
        sa.select(sa.func.sum(ledger_entries.c.amount)).where(ledger_entries.c.user_id == user_id),
    )
    assert total == Decimal("0.00000001")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0.000000001", "decimal places"),
        ("1.123456789", "decimal places"),
        ("92233720368.54775808", "range"),
        ("-92233720368.54775809", "range"),
        ("1E+30", "range"),
    ],
)
async def test_money_refuses_what_it_cannot_store_exactly(
    engine: AsyncEngine, raw: str, reason: str
) -> None:
    user_id = await add_user(engine)
    with pytest.raises(StatementError) as error:
        await add_entry(engine, user_id, Decimal(raw))
    assert isinstance(error.value.orig, ValueError)
    assert reason in str(error.value.orig)
    count = await scalar(
        engine,
        sa.select(sa.func.count())
        .select_from(ledger_entries)
        .where(ledger_entries.c.user_id == user_id),
    )
    assert count == 0


@pytest.mark.parametrize("offset_minutes", [0, 330, -480, 14 * 60, -(12 * 60)])
async def test_datetimes_come_back_as_the_same_instant_in_utc(
    engine: AsyncEngine, offset_minutes: int
) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime(2031, 3, 4, 5, 6, 7, 890123, tzinfo=zone)
    user_id = await add_user(engine)
    entry_id = await add_entry(engine, user_id, Decimal(1), at=moment)

    stored = await scalar(
        engine, sa.select(ledger_entries.c.created_at).where(ledger_entries.c.id == entry_id)
    )

    assert stored == moment
    assert stored.utcoffset() == timedelta(0)
    assert stored.replace(tzinfo=None) == moment.astimezone(UTC).replace(tzinfo=None)


async def test_naive_datetimes_are_refused(engine: AsyncEngine) -> None:
    user_id = await add_user(engine)
    with pytest.raises(StatementError) as error:
        await add_entry(engine, user_id, Decimal(1), at=datetime(2031, 1, 1))
    assert isinstance(error.value.orig, ValueError)


async def test_datetimes_order_and_compare_by_instant_across_offsets(engine: AsyncEngine) -> None:
    user_id = await add_user(engine)
    # Wall-clock order (09:00, 07:00, 08:00) is the reverse of instant order here.
    moments = [
        datetime(2031, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=5))),  # 04:00Z
        datetime(2031, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=2))),  # 05:00Z
        datetime(2031, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=2))),  # 06:00Z
    ]
    for moment in reversed(moments):
        await add_entry(engine, user_id, Decimal(1), at=moment)
    mine = ledger_entries.c.user_id == user_id

    async with engine.connect() as conn:
        ordered = (
            await conn.execute(
                sa.select(ledger_entries.c.created_at)
                .where(mine)
                .order_by(ledger_entries.c.created_at)
            )
        ).scalars()
        assert list(ordered) == moments
        # 00:30 at -04:30 is 05:00Z: only the last two are at or after it.
        bound = datetime(2031, 1, 1, 0, 30, tzinfo=timezone(-timedelta(hours=4, minutes=30)))
        later = await conn.execute(
            sa.select(sa.func.count())
            .select_from(ledger_entries)
            .where(mine, ledger_entries.c.created_at >= bound)
        )
        assert later.scalar_one() == 2


ENUM_COLUMNS = [
    pytest.param("users", "role", "ROOT", id="user-role"),
    pytest.param("markets", "status", "BOGUS", id="market-status"),
    pytest.param("markets", "outcome", "MAYBE", id="market-outcome"),
    pytest.param("ledger_entries", "kind", "GIFT", id="ledger-kind"),
    pytest.param("markets", "status", "active", id="market-status-wrong-case"),
]


@pytest.mark.parametrize(("table", "column", "value"), ENUM_COLUMNS)
async def test_enum_columns_refuse_values_outside_the_enum(
    engine: AsyncEngine, table: str, column: str, value: str
) -> None:
    user_id = await add_user(engine)
    market_id = await add_market(engine, user_id)
    entry_id = await add_entry(engine, user_id, Decimal(1))
    row_id = {"users": user_id, "markets": market_id, "ledger_entries": entry_id}[table]
    # Raw SQL, so that nothing in SQLAlchemy's Enum type can refuse the value first.
    statement = sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id").bindparams(
        sa.bindparam("value", value), sa.bindparam("id", row_id, type_=sa.Uuid)
    )
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(statement)


async def test_an_enum_column_refuses_an_invalid_value_on_insert(engine: AsyncEngine) -> None:
    user_id = await add_user(engine)
    statement = sa.text(
        "INSERT INTO ledger_entries (id, user_id, amount, kind, created_at)"
        " VALUES (:id, :user_id, :amount, 'BONUS', :at)"
    ).bindparams(
        sa.bindparam("id", uuid.uuid4(), type_=sa.Uuid),
        sa.bindparam("user_id", user_id, type_=sa.Uuid),
        sa.bindparam("amount", Decimal(5), type_=Money),
        sa.bindparam("at", EPOCH, type_=ledger_entries.c.created_at.type),
    )
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(statement)


@pytest.mark.parametrize("balance", ["-0.00000001", "-1000"])
async def test_a_balance_cannot_go_negative(engine: AsyncEngine, balance: str) -> None:
    user_id = await add_user(engine, balance=Decimal(5))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(users).where(users.c.id == user_id).values(balance=Decimal(balance))
            )
    stored = await scalar(engine, sa.select(users.c.balance).where(users.c.id == user_id))
    assert stored == Decimal(5)


async def test_a_balance_may_reach_exactly_zero(engine: AsyncEngine) -> None:
    user_id = await add_user(engine, balance=Decimal("0.00000001"))
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(balance=users.c.balance - Decimal("0.00000001"))
        )
    assert await scalar(engine, sa.select(users.c.balance).where(users.c.id == user_id)) == 0


async def test_a_conditional_debit_keeps_money_exact(engine: AsyncEngine) -> None:
    # The trading pattern: UPDATE ... WHERE balance >= cost RETURNING balance.
    user_id = await add_user(engine, balance=Decimal("10.00000000"))
    cost = Decimal("3.33333334")

    async def debit() -> Decimal | None:
        async with engine.begin() as conn:
            result = await conn.execute(
                sa.update(users)
                .where(users.c.id == user_id, users.c.balance >= cost)
                .values(balance=users.c.balance - cost)
                .returning(users.c.balance)
            )
            value: Decimal | None = result.scalar_one_or_none()
            return value

    assert await debit() == Decimal("6.66666666")
    assert await debit() == Decimal("3.33333332")
    assert await debit() is None
    assert await scalar(engine, sa.select(users.c.balance).where(users.c.id == user_id)) == (
        Decimal("3.33333332")
    )
