"""Buying and selling shares on the market maker: one transaction per trade.

The transaction follows DESIGN.md §3. It locks the market row
(``SELECT ... FOR UPDATE``; ``BEGIN IMMEDIATE`` on SQLite), prices the trade
from the locked state, moves the money with a conditional update
(``... WHERE balance >= :cost RETURNING balance``), then writes the position,
the trade, the ledger entry and the market's new shares and volume. Every
trade of a market is therefore serialized on that market's row, and every
debit of a user on that user's row; a deadlock or serialization failure runs
the whole transaction again (``retrying``).

An idempotency key is claimed first, in the same transaction, and stores the
trade it produced: a repeat with the same input returns that trade and moves
no money, a repeat with other input is refused. Concurrent repeats wait on the
key's row, so exactly one of them trades.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from functools import partial
from uuid import UUID

from domain import trade_rules
from domain.commands import BuyShares, SellShares
from domain.entities import (
    LedgerKind,
    Market,
    MarketStatus,
    Outcome,
    Position,
    Trade,
    TradeSide,
    User,
)
from domain.errors import (
    IdempotencyKeyReused,
    InsufficientBalance,
    InsufficientShares,
    InvalidInput,
    MarketNotActive,
    NotFound,
    SlippageExceeded,
)
from domain.money import QUANTUM, charge, payout
from domain.policy import Actor
from domain.ports import Clock, KeyRecord, UnitOfWork, UnitOfWorkFactory
from domain.pricing import (
    buy_cost,
    display_price,
    price,
    quoted_yes_price,
    sell_proceeds,
    shares_for_amount,
)
from domain.problems import Problems
from domain.retry import retrying

KEY_TTL = timedelta(hours=24)
_ZERO = Decimal(0).quantize(QUANTUM)


@dataclass(frozen=True, slots=True)
class Order:
    """A validated trade request. A buy gives ``amount`` or ``shares``; a sale ``shares``.

    ``limit`` bounds the average price per share: at most it when buying, at least
    it when selling.
    """

    market_id: UUID
    outcome: Outcome
    side: TradeSide
    amount: Decimal | None = None
    shares: Decimal | None = None
    limit: Decimal | None = None

    def fingerprint(self) -> str:
        """What an idempotency key is bound to: the request's input, normalised."""

        def text(value: Decimal | None) -> str:
            return "" if value is None else str(value.quantize(QUANTUM))

        parts = (
            self.side.value,
            str(self.market_id),
            self.outcome.value,
            text(self.amount),
            text(self.shares),
            text(self.limit),
        )
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """A trade and what it left, all as committed. ``replayed``: an idempotent repeat,
    showing the original trade and the position, market and user as they are now."""

    trade: Trade
    position: Position
    market: Market
    user: User
    replayed: bool = False


def _tradeable(market: Market, now: datetime) -> None:
    if market.status is not MarketStatus.ACTIVE:
        raise MarketNotActive(f"This market is {market.status.value.lower()}; it cannot be traded.")
    if market.end_date <= now:
        raise MarketNotActive("Trading in this market ended at its end date.")


def _after(market: Market, outcome: Outcome, delta: Decimal) -> tuple[Decimal, Decimal]:
    if outcome is Outcome.YES:
        return market.q_yes + delta, market.q_no
    return market.q_yes, market.q_no + delta


def _average(amount: Decimal, shares: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 50
        return amount / shares


def _share_of(whole: Decimal, part: Decimal, of: Decimal) -> Decimal:
    """``whole · part / of`` without rounding to the ambient 28 digits on the way."""
    with localcontext() as context:
        context.prec = 60
        return whole * part / of


async def execute(
    uow: UnitOfWork, user_id: UUID, market: Market, order: Order, now: datetime
) -> TradeOutcome:
    """Trade in ``market``, whose row the caller has locked in ``uow``'s transaction."""
    _tradeable(market, now)
    if order.side is TradeSide.BUY:
        return await _buy(uow, user_id, market, order, now)
    return await _sell(uow, user_id, market, order, now)


async def _buy(
    uow: UnitOfWork, user_id: UUID, market: Market, order: Order, now: datetime
) -> TradeOutcome:
    state = (market.q_yes, market.q_no, market.liquidity, order.outcome)
    if order.shares is not None:
        shares = order.shares
    else:
        assert order.amount is not None
        shares = shares_for_amount(*state, order.amount)
    cost = buy_cost(*state, shares)
    q_yes, q_no = _after(market, order.outcome, shares)
    if max(q_yes, q_no) > trade_rules.MAX_MARKET_SHARES:
        raise InvalidInput(
            "shares" if order.shares is not None else "amount",
            f"A market holds at most {trade_rules.MAX_MARKET_SHARES} shares of an outcome.",
        )
    if order.limit is not None and cost > order.limit * shares:
        raise SlippageExceeded(charge(_average(cost, shares)), order.limit)
    user = await uow.users.debit(user_id, cost)
    if user is None:
        current = await uow.users.get(user_id)
        raise InsufficientBalance(cost, _ZERO if current is None else current.balance)
    position = await uow.positions.add_shares(user_id, market.id, order.outcome, shares, cost, now)
    return await _record(uow, user, position, market, order, shares, cost, (q_yes, q_no), now)


async def _sell(
    uow: UnitOfWork, user_id: UUID, market: Market, order: Order, now: datetime
) -> TradeOutcome:
    assert order.shares is not None
    shares = order.shares
    held = await uow.positions.get_for_update(user_id, market.id, order.outcome)
    if held is None or held.shares < shares:
        raise InsufficientShares(shares, _ZERO if held is None else held.shares)
    proceeds = sell_proceeds(market.q_yes, market.q_no, market.liquidity, order.outcome, shares)
    if proceeds == 0:
        raise InvalidInput("shares", "Selling so few shares pays nothing; sell more at once.")
    if order.limit is not None and proceeds < order.limit * shares:
        raise SlippageExceeded(payout(_average(proceeds, shares)), order.limit)
    # The basis leaves in proportion to the shares sold, rounded up: what stays (and a
    # cancellation would refund) never exceeds its exact share.
    if shares == held.shares:
        basis = held.cost_basis
    else:
        basis = min(charge(_share_of(held.cost_basis, shares, held.shares)), held.cost_basis)
    position = await uow.positions.remove_shares(held.id, shares, basis, now)
    user = await uow.users.credit_returning(user_id, proceeds)
    after = _after(market, order.outcome, -shares)
    return await _record(uow, user, position, market, order, shares, proceeds, after, now)


async def _record(
    uow: UnitOfWork,
    user: User,
    position: Position,
    market: Market,
    order: Order,
    shares: Decimal,
    amount: Decimal,
    after: tuple[Decimal, Decimal],
    now: datetime,
) -> TradeOutcome:
    """The trade row, its ledger entry and the market's new state."""
    trade = Trade(
        id=uuid.uuid4(),
        user_id=user.id,
        market_id=market.id,
        outcome=order.outcome,
        side=order.side,
        shares=shares,
        amount=amount,
        price_before=display_price(
            price(market.q_yes, market.q_no, market.liquidity, order.outcome)
        ),
        price_after=display_price(price(*after, market.liquidity, order.outcome)),
        created_at=now,
    )
    await uow.trades.add(trade)
    signed = -amount if order.side is TradeSide.BUY else amount
    await uow.ledger.add(user.id, signed, LedgerKind.TRADE, now, market.id, trade.id)
    # The shown price is stored with the shares it derives from, so reads never compute it.
    shown = quoted_yes_price(*after, market.liquidity)
    market = await uow.markets.apply_trade(market.id, *after, market.volume + amount, shown, now)
    return TradeOutcome(trade=trade, position=position, market=market, user=user)


class TradingService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, key_ttl: timedelta = KEY_TTL) -> None:
        self._uow = uow
        self._clock = clock
        self._key_ttl = key_ttl

    async def buy(self, actor: Actor, cmd: BuyShares) -> TradeOutcome:
        """Spend ``amount`` on as many shares as it buys, or buy exactly ``shares``."""
        problems = Problems(cmd.problems)
        if (cmd.amount is None) == (cmd.shares is None):
            problems.add("amount", "Give exactly one of 'amount' and 'shares'.")
        amount = (
            None if cmd.amount is None else problems.check(partial(trade_rules.amount, cmd.amount))
        )
        shares = (
            None if cmd.shares is None else problems.check(partial(trade_rules.shares, cmd.shares))
        )
        limit = (
            None
            if cmd.max_average_price is None
            else problems.check(
                partial(trade_rules.price_limit, cmd.max_average_price, "maxAveragePrice")
            )
        )
        key = self._key(problems, cmd.idempotency_key)
        problems.raise_any()
        assert cmd.market_id is not None
        order = Order(cmd.market_id, cmd.outcome, TradeSide.BUY, amount, shares, limit)
        return await retrying(lambda: self._trade(actor.user_id, order, key))

    async def sell(self, actor: Actor, cmd: SellShares) -> TradeOutcome:
        problems = Problems(cmd.problems)
        shares = problems.check(partial(trade_rules.shares, cmd.shares))
        limit = (
            None
            if cmd.min_average_price is None
            else problems.check(
                partial(trade_rules.price_limit, cmd.min_average_price, "minAveragePrice")
            )
        )
        key = self._key(problems, cmd.idempotency_key)
        problems.raise_any()
        assert cmd.market_id is not None
        order = Order(cmd.market_id, cmd.outcome, TradeSide.SELL, shares=shares, limit=limit)
        return await retrying(lambda: self._trade(actor.user_id, order, key))

    async def purge_expired_keys(self, batch: int = 1000) -> int:
        """Remove idempotency keys past their 24 hours, a batch per transaction."""
        removed = 0
        while True:
            async with self._uow() as uow:
                count = await uow.idempotency.purge_expired(self._clock(), batch)
                await uow.commit()
            removed += count
            if count < batch:
                return removed

    @staticmethod
    def _key(problems: Problems, key: str | None) -> str | None:
        return None if key is None else problems.check(partial(trade_rules.idempotency_key, key))

    async def _trade(self, user_id: UUID, order: Order, key: str | None) -> TradeOutcome:
        now = self._clock()
        async with self._uow() as uow:
            if key is not None:
                fingerprint = order.fingerprint()
                held = await uow.idempotency.claim(
                    user_id, key, fingerprint, now, now + self._key_ttl
                )
                if held is not None:
                    if held.fingerprint != fingerprint:
                        raise IdempotencyKeyReused()
                    return await self._replay(uow, user_id, held)
            market = await uow.markets.get_for_update(order.market_id)
            if market is None:
                raise NotFound("No market has that id.")
            result = await execute(uow, user_id, market, order, now)
            if key is not None:
                await uow.idempotency.record(user_id, key, result.trade.id)
            await uow.commit()
        return result

    @staticmethod
    async def _replay(uow: UnitOfWork, user_id: UUID, held: KeyRecord) -> TradeOutcome:
        assert held.trade_id is not None, "a key is stored with its trade, in one transaction"
        trade = await uow.trades.get(held.trade_id)
        assert trade is not None
        position = await uow.positions.get(user_id, trade.market_id, trade.outcome)
        market = await uow.markets.get(trade.market_id)
        user = await uow.users.get(user_id)
        assert position is not None
        assert market is not None
        assert user is not None
        return TradeOutcome(trade, position, market, user, replayed=True)
