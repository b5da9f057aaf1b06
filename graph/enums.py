"""GraphQL enums, each value documented, mirroring the domain's enums by value."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Where a market is in its life.")
class MarketStatus(Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="Open for trading.")
    CLOSED = strawberry.enum_value(
        "CLOSED", description="Trading has stopped; awaiting resolution."
    )
    RESOLVED = strawberry.enum_value("RESOLVED", description="The outcome is known and paid out.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Called off; cost bases refunded.")


@strawberry.enum(description="The two answers to a market's question.")
class Outcome(Enum):
    YES = strawberry.enum_value("YES", description="The event happens.")
    NO = strawberry.enum_value("NO", description="The event does not happen.")


@strawberry.enum(description="A user's role, which decides what they may do.")
class Role(Enum):
    USER = strawberry.enum_value("USER", description="A trader.")
    MODERATOR = strawberry.enum_value(
        "MODERATOR", description="Can close, resolve and cancel markets, and read jobs."
    )
    ADMIN = strawberry.enum_value("ADMIN", description="Can manage users and everything else.")


@strawberry.enum(description="Which field to sort markets by. Ties are broken by id.")
class MarketOrderField(Enum):
    VOLUME = strawberry.enum_value("VOLUME", description="Money traded so far.")
    CREATED_AT = strawberry.enum_value("CREATED_AT", description="When the market was created.")
    END_DATE = strawberry.enum_value("END_DATE", description="When trading ends.")
    NAME = strawberry.enum_value("NAME", description="The market's name.")


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest first.")
    DESC = strawberry.enum_value("DESC", description="Largest first.")


@strawberry.enum(description="Whether a trade bought or sold shares.")
class TradeSide(Enum):
    BUY = strawberry.enum_value("BUY", description="Shares bought from the market maker.")
    SELL = strawberry.enum_value("SELL", description="Shares sold back to the market maker.")


@strawberry.enum(description="Why a balance changed.")
class LedgerKind(Enum):
    SIGNUP_GRANT = strawberry.enum_value(
        "SIGNUP_GRANT", description="The starting balance granted at sign-up."
    )
    TRADE = strawberry.enum_value(
        "TRADE", description="A purchase (negative) or a sale (positive); see `trade`."
    )
    PAYOUT = strawberry.enum_value(
        "PAYOUT", description="1 per winning share, paid when the market was resolved."
    )
    REFUND = strawberry.enum_value(
        "REFUND", description="A position's cost basis, refunded when the market was cancelled."
    )


@strawberry.enum(description="How wide each bucket of a price history is.")
class PriceInterval(Enum):
    MINUTE = strawberry.enum_value("MINUTE", description="One minute.")
    FIVE_MINUTES = strawberry.enum_value("FIVE_MINUTES", description="Five minutes.")
    HOUR = strawberry.enum_value("HOUR", description="One hour.")
    DAY = strawberry.enum_value("DAY", description="One day (UTC).")


@strawberry.enum(description="What a background job does.")
class JobKind(Enum):
    MARKET_PAYOUT = strawberry.enum_value(
        "MARKET_PAYOUT", description="Pays 1 per winning share of a resolved market."
    )
    MARKET_REFUND = strawberry.enum_value(
        "MARKET_REFUND", description="Refunds every cost basis of a cancelled market."
    )


@strawberry.enum(description="Where a background job is.")
class JobState(Enum):
    QUEUED = strawberry.enum_value("QUEUED", description="Waiting for a worker.")
    RUNNING = strawberry.enum_value("RUNNING", description="A worker is running it.")
    RETRYING = strawberry.enum_value(
        "RETRYING", description="An attempt failed (see `error`); it will be tried again."
    )
    COMPLETE = strawberry.enum_value("COMPLETE", description="Done.")
    FAILED = strawberry.enum_value(
        "FAILED", description="Every attempt failed; `error` says what the last one hit."
    )
