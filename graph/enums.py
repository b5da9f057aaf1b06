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
    MODERATOR = strawberry.enum_value("MODERATOR", description="Can close and cancel markets.")
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
