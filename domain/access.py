"""Who is acting, and what they may do to an object."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.entities import Market, Role


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user a use case runs for, as stored in the database now."""

    user_id: UUID
    role: Role


def may_edit_market(actor: Actor, market: Market) -> bool:
    """Only the creator may edit or delete a market (roles widen this in the access issue)."""
    return market.creator_id == actor.user_id


def may_read_private(actor: Actor | None, user_id: UUID) -> bool:
    """A user's email and balance are visible to that user only."""
    return actor is not None and actor.user_id == user_id
