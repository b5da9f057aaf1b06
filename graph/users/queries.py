"""Reading users."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from graph.context import Context
from graph.ids import expect_id
from graph.users.types import UserType


@strawberry.type
class UserQueries:
    @strawberry.field(description="The signed-in user, or null when anonymous.")
    async def viewer(self, info: Info[Context, None]) -> UserType | None:
        actor = await info.context.actor()
        if actor is None:
            return None
        user = await info.context.loaders.user(actor.user_id)
        return None if user is None else UserType.from_entity(user)

    @strawberry.field(description="One user by id, or null when there is none.")
    async def user(
        self,
        info: Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="A User id.")],
    ) -> UserType | None:
        user = await info.context.loaders.user(expect_id(id, "User", "id"))
        return None if user is None else UserType.from_entity(user)
