"""Loading a user the lazy way, for fields that usually get theirs fetched ahead."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from graph.context import Context

if TYPE_CHECKING:
    from graph.users.types import UserType


async def load_user(context: Context, user_id: UUID) -> UserType:
    """A user that must exist (a foreign key points at it), through the request's loader."""
    from graph.users.types import UserType

    user = await context.loaders.user(user_id)
    assert user is not None, "a referenced user always exists (foreign key)"
    return UserType.from_entity(user)
