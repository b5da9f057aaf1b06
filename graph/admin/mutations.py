"""Administration (roles, account state) and moderation (closing, resolving, cancelling
markets)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.commands import ResolveMarket
from domain.entities import Market, User
from domain.entities import Outcome as DomainOutcome
from domain.entities import Role as DomainRole
from domain.policy import Permission
from domain.services.lifecycle import Settlement
from graph.context import Context
from graph.enums import Outcome, Role
from graph.errors import InvalidStateError, NotFoundError, ValidationError
from graph.ids import input_id
from graph.jobs.types import JobType
from graph.markets.types import MarketType
from graph.outcomes import outcome
from graph.permissions import requires
from graph.users.types import UserType


@strawberry.input(description="Whose role to set, and to what.")
class SetUserRoleInput:
    user_id: strawberry.ID = strawberry.field(description="The User.")
    role: Role = strawberry.field(description="The new role.")


@strawberry.input(description="Which user.")
class UserIdInput:
    user_id: strawberry.ID = strawberry.field(description="The User.")


@strawberry.type(description="The user as they are now.")
class UserChangeSuccess:
    user: UserType = strawberry.field(description="The changed user.")


UserChangeResult = Annotated[
    UserChangeSuccess | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union(
        "UserChangeResult",
        description="The outcome of `setUserRole`, `disableUser` and `enableUser`.",
    ),
]


@strawberry.input(description="Which market.")
class MarketIdInput:
    id: strawberry.ID = strawberry.field(description="The Market.")


@strawberry.type(description="The market as it is now.")
class MarketChangeSuccess:
    market: MarketType = strawberry.field(description="The changed market.")
    job: JobType | None = strawberry.field(
        default=None,
        description="For `cancelMarket`: the job that refunds every cost basis (follow it"
        " with `job(id:)`). Null for `closeMarket`.",
    )


MarketChangeResult = Annotated[
    MarketChangeSuccess | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union(
        "MarketChangeResult", description="The outcome of `closeMarket` and `cancelMarket`."
    ),
]


@strawberry.input(description="Which market, and how its question was answered.")
class ResolveMarketInput:
    market_id: strawberry.ID = strawberry.field(description="The Market.")
    outcome: Outcome = strawberry.field(description="The outcome that happened.")


@strawberry.type(description="The market is resolved; its payout job is queued.")
class ResolveMarketSuccess:
    market: MarketType = strawberry.field(description="The market, now RESOLVED.")
    job: JobType = strawberry.field(
        description="The job that pays 1 per winning share (follow it with `job(id:)`)."
    )


ResolveMarketResult = Annotated[
    ResolveMarketSuccess | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union("ResolveMarketResult", description="The outcome of `resolveMarket`."),
]


@strawberry.type
class AdminMutations:
    @strawberry.mutation(
        description="Give a user another role (needs `user:manage`). Takes effect on their next"
        " request.",
        extensions=requires(Permission.USER_MANAGE),
    )
    async def set_user_role(
        self,
        info: Info[Context, None],
        input: Annotated[SetUserRoleInput, strawberry.argument(description="User and role.")],
    ) -> UserChangeResult | None:
        actor = await info.context.require_actor()
        role = DomainRole[input.role.name]
        return await outcome(
            lambda: info.context.services.admin.set_role(
                actor, input_id(input.user_id, "User", "userId"), role
            ),
            _user_changed,
        )

    @strawberry.mutation(
        description="Disable an account (needs `user:manage`): its sessions end and its tokens"
        " stop working at once.",
        extensions=requires(Permission.USER_MANAGE),
    )
    async def disable_user(
        self,
        info: Info[Context, None],
        input: Annotated[UserIdInput, strawberry.argument(description="Which user.")],
    ) -> UserChangeResult | None:
        return await _set_disabled(info, input, disabled=True)

    @strawberry.mutation(
        description="Enable a disabled account again (needs `user:manage`).",
        extensions=requires(Permission.USER_MANAGE),
    )
    async def enable_user(
        self,
        info: Info[Context, None],
        input: Annotated[UserIdInput, strawberry.argument(description="Which user.")],
    ) -> UserChangeResult | None:
        return await _set_disabled(info, input, disabled=False)

    @strawberry.mutation(
        description="Stop trading in an active market (needs `market:close`).",
        extensions=requires(Permission.MARKET_CLOSE),
    )
    async def close_market(
        self,
        info: Info[Context, None],
        input: Annotated[MarketIdInput, strawberry.argument(description="Which market.")],
    ) -> MarketChangeResult | None:
        actor = await info.context.require_actor()
        return await outcome(
            lambda: info.context.services.admin.close_market(
                actor, input_id(input.id, "Market", "id")
            ),
            _market_changed,
        )

    @strawberry.mutation(
        description="Call off an active or closed market (needs `market:cancel`): it is"
        " CANCELLED at once, and a job refunds every holder's cost basis, each exactly once.",
        extensions=requires(Permission.MARKET_CANCEL),
    )
    async def cancel_market(
        self,
        info: Info[Context, None],
        input: Annotated[MarketIdInput, strawberry.argument(description="Which market.")],
    ) -> MarketChangeResult | None:
        actor = await info.context.require_actor()
        return await outcome(
            lambda: info.context.services.lifecycle.cancel(
                actor, input_id(input.id, "Market", "id")
            ),
            _market_cancelled,
        )

    @strawberry.mutation(
        description="Answer an active or closed market's question (needs `market:resolve`):"
        " it is RESOLVED at once, and a job pays 1 per winning share, each position exactly"
        " once.",
        extensions=requires(Permission.MARKET_RESOLVE),
    )
    async def resolve_market(
        self,
        info: Info[Context, None],
        input: Annotated[
            ResolveMarketInput, strawberry.argument(description="The market and the answer.")
        ],
    ) -> ResolveMarketResult | None:
        actor = await info.context.require_actor()
        return await outcome(
            lambda: info.context.services.lifecycle.resolve(
                actor,
                ResolveMarket(
                    market_id=input_id(input.market_id, "Market", "marketId"),
                    outcome=DomainOutcome[input.outcome.name],
                ),
            ),
            _resolved,
        )


async def _set_disabled(
    info: Info[Context, None], input: UserIdInput, *, disabled: bool
) -> UserChangeResult:
    actor = await info.context.require_actor()
    return await outcome(
        lambda: info.context.services.admin.set_disabled(
            actor, input_id(input.user_id, "User", "userId"), disabled
        ),
        _user_changed,
    )


def _user_changed(user: User) -> UserChangeSuccess:
    return UserChangeSuccess(user=UserType.from_entity(user))


def _market_changed(market: Market) -> MarketChangeSuccess:
    return MarketChangeSuccess(market=MarketType.from_entity(market))


def _market_cancelled(settlement: Settlement) -> MarketChangeSuccess:
    return MarketChangeSuccess(
        market=MarketType.from_entity(settlement.market), job=JobType.from_entity(settlement.job)
    )


def _resolved(settlement: Settlement) -> ResolveMarketSuccess:
    return ResolveMarketSuccess(
        market=MarketType.from_entity(settlement.market), job=JobType.from_entity(settlement.job)
    )
