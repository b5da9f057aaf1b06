"""Role-based access control, as data: each role is a set of named permissions.

Decisions are always made on the actor as the database has them on this
request (role, disabled flag), never on a role claimed in a token.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from domain.entities import Market, Role


class Permission(enum.StrEnum):
    MARKET_CREATE = "market:create"
    MARKET_UPDATE_OWN = "market:update:own"
    MARKET_UPDATE_ANY = "market:update:any"
    MARKET_DELETE_OWN = "market:delete:own"
    MARKET_DELETE_ANY = "market:delete:any"
    MARKET_CLOSE = "market:close"
    MARKET_CANCEL = "market:cancel"
    MARKET_RESOLVE = "market:resolve"
    USER_READ_PRIVATE = "user:read:private"
    USER_MANAGE = "user:manage"
    JOB_READ = "job:read"


_TRADER = frozenset(
    {Permission.MARKET_CREATE, Permission.MARKET_UPDATE_OWN, Permission.MARKET_DELETE_OWN}
)
_MODERATOR = _TRADER | {
    Permission.MARKET_CLOSE,
    Permission.MARKET_CANCEL,
    Permission.MARKET_RESOLVE,
    Permission.JOB_READ,
}

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.USER: _TRADER,
    Role.MODERATOR: frozenset(_MODERATOR),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user a use case runs for, as stored in the database now."""

    user_id: UUID
    role: Role
    session_id: UUID | None = None


def has_permission(actor: Actor | None, permission: Permission) -> bool:
    return actor is not None and permission in ROLE_PERMISSIONS[actor.role]


def may_update_market(actor: Actor, market: Market) -> bool:
    """The creator with ``market:update:own``, or anyone with ``market:update:any``."""
    if has_permission(actor, Permission.MARKET_UPDATE_ANY):
        return True
    return market.creator_id == actor.user_id and has_permission(
        actor, Permission.MARKET_UPDATE_OWN
    )


def may_delete_market(actor: Actor, market: Market) -> bool:
    if has_permission(actor, Permission.MARKET_DELETE_ANY):
        return True
    return market.creator_id == actor.user_id and has_permission(
        actor, Permission.MARKET_DELETE_OWN
    )


def may_read_private(actor: Actor | None, user_id: UUID) -> bool:
    """A user's email, balance and account state: the user themself and ``user:read:private``."""
    if actor is None:
        return False
    return actor.user_id == user_id or has_permission(actor, Permission.USER_READ_PRIVATE)


def may_read_positions(actor: Actor | None, holder_id: UUID, positions_public: bool) -> bool:
    """Positions are public unless configured private; then as private as the email."""
    return positions_public or may_read_private(actor, holder_id)
