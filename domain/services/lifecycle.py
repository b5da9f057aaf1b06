"""A market's life after trading: closing at the end date, resolution, cancellation,
and settlement (payouts and refunds) as background jobs.

Resolving or cancelling writes the market's new status and the job's row in one
transaction, then hands the job to the queue. Settlement pays positions in
batches, one transaction per batch: the batch locks the market row (so two runs
of the same job take turns), takes unpaid positions in id order, marks each
with what it is paid and credits the holders. A position marked paid is never
paid again, so a job that runs twice, or is killed mid-batch and run again,
pays every position exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.commands import ResolveMarket
from domain.entities import Job, JobKind, LedgerKind, Market, MarketStatus, Position
from domain.errors import Forbidden, InvalidState, NotFound
from domain.policy import Actor, Permission, has_permission
from domain.ports import Clock, JobQueue, NewLedgerEntry, UnitOfWorkFactory
from domain.retry import retrying

SETTLEMENT_BATCH = 500
Heartbeat = Callable[[], Awaitable[None]]
_OPEN = (MarketStatus.ACTIVE, MarketStatus.CLOSED)


@dataclass(frozen=True, slots=True)
class Settlement:
    """A market that was resolved or cancelled, and the job that settles it."""

    market: Market
    job: Job


def _require(actor: Actor, permission: Permission) -> None:
    if not has_permission(actor, permission):
        raise Forbidden(f"This needs the '{permission.value}' permission.")


class MarketLifecycle:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        queue: JobQueue,
        batch_size: int = SETTLEMENT_BATCH,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._queue = queue
        self._batch = batch_size

    async def resolve(self, actor: Actor, cmd: ResolveMarket) -> Settlement:
        """Settle the question: the market is RESOLVED and a payout job is queued."""
        _require(actor, Permission.MARKET_RESOLVE)
        return await self._end(cmd.market_id, JobKind.MARKET_PAYOUT, cmd)

    async def cancel(self, actor: Actor, market_id: UUID) -> Settlement:
        """Call the market off: it is CANCELLED and a job refunds every cost basis."""
        _require(actor, Permission.MARKET_CANCEL)
        return await self._end(market_id, JobKind.MARKET_REFUND, None)

    async def _end(
        self, market_id: UUID, kind: JobKind, resolution: ResolveMarket | None
    ) -> Settlement:
        now = self._clock()
        async with self._uow() as uow:
            market = await uow.markets.get_for_update(market_id)
            if market is None:
                raise NotFound("No market has that id.")
            if market.status not in _OPEN:
                verb = "resolved" if resolution else "cancelled"
                raise InvalidState(f"Only an active or closed market can be {verb}.")
            if resolution is not None:
                market = await uow.markets.resolve(market.id, resolution.outcome, now)
            else:
                market = await uow.markets.set_status(market.id, MarketStatus.CANCELLED, now)
            job = await uow.jobs.add(kind, market.id, now)
            await uow.commit()
        await self._queue.enqueue(job)
        return Settlement(market, job)

    async def close_expired(self) -> list[UUID]:
        """Close every active market whose end date has come (one atomic update)."""
        async with self._uow() as uow:
            closed = await uow.markets.close_expired(self._clock())
            await uow.commit()
        return closed

    async def settle(self, market_id: UUID, heartbeat: Heartbeat | None = None) -> int:
        """Pay (or refund) every unpaid position of a resolved (or cancelled) market.

        Idempotent: returns how many positions this run settled, 0 when another
        run already did. ``heartbeat`` is awaited after each batch (a worker
        uses it to show it is alive).
        """
        settled = 0
        while True:
            count = await retrying(lambda: self._settle_batch(market_id))
            settled += count
            if heartbeat is not None and count:
                await heartbeat()
            if count < self._batch:
                return settled

    async def _settle_batch(self, market_id: UUID) -> int:
        now = self._clock()
        async with self._uow() as uow:
            market = await uow.markets.get_for_update(market_id)
            if market is None:
                raise NotFound("No market has that id.")
            value, kind = _settlement_rule(market)
            batch = await uow.positions.unsettled_for_update(market.id, self._batch)
            if not batch:
                return 0
            paid = [(position, value(position)) for position in batch]
            await uow.positions.mark_settled([(p.id, amount) for p, amount in paid], now)
            owed = [(p, amount) for p, amount in paid if amount > 0]
            await uow.users.credit_many([(p.user_id, amount) for p, amount in owed])
            await uow.ledger.add_many(
                [NewLedgerEntry(p.user_id, amount, kind, now, market.id) for p, amount in owed]
            )
            await uow.commit()
        return len(batch)


def _settlement_rule(market: Market) -> tuple[Callable[[Position], Decimal], LedgerKind]:
    """What each position is paid: 1 per winning share, or its cost basis back."""
    if market.status is MarketStatus.RESOLVED:
        winner = market.outcome

        def payout(position: Position) -> Decimal:
            return position.shares if position.outcome is winner else Decimal(0)

        return payout, LedgerKind.PAYOUT
    if market.status is MarketStatus.CANCELLED:
        return (lambda position: position.cost_basis), LedgerKind.REFUND
    raise InvalidState("Only a resolved or cancelled market is settled.")
