"""Administration (roles, account state) and moderation (closing, cancelling markets)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.entities import Market, User
from domain.entities import Role as DomainRole
from domain.policy import Permission
from graph.context import Context
from graph.enums import Role
from graph.errors import InvalidStateError, NotFoundError, ValidationError
from graph.ids import input_id
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


MarketChangeResult = Annotated[
    MarketChangeSuccess | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union(
        "MarketChangeResult", description="The outcome of `closeMarket` and `cancelMarket`."
    ),
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
        description="Call off an active or closed market and refund every holder's cost basis"
        " (needs `market:cancel`).",
        extensions=requires(Permission.MARKET_CANCEL),
    )
    async def cancel_market(
        self,
        info: Info[Context, None],
        input: Annotated[MarketIdInput, strawberry.argument(description="Which market.")],
    ) -> MarketChangeResult | None:
        actor = await info.context.require_actor()
        return await outcome(
            lambda: info.context.services.admin.cancel_market(
                actor, input_id(input.id, "Market", "id")
            ),
            _market_changed,
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
