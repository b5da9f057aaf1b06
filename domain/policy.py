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


@dataclass(frozen=True, slots=True)
class Visibility:
    """What belongs to a user and is shown to the user themself, to holders of
    ``permission`` and, where a deployment makes it public (``configurable``), to all.

    The same rule is evaluated here for the resolver path and rendered as a SQL
    predicate by the compiled path (``infra/db/compiler.py``), from ``sees_all``
    and the viewer's id.
    """

    name: str
    permission: Permission
    configurable: bool = False

    def sees_all(self, actor: Actor | None, public: bool = False) -> bool:
        """Whether the viewer sees every owner's, so no per-owner check is needed."""
        return (self.configurable and public) or has_permission(actor, self.permission)

    def allows(self, actor: Actor | None, owner_id: UUID, public: bool = False) -> bool:
        if self.sees_all(actor, public):
            return True
        return actor is not None and actor.user_id == owner_id


# A user's email, balance, account state and permissions.
PRIVATE_FIELDS = Visibility("private-fields", Permission.USER_READ_PRIVATE)
# Positions: public unless configured private (POSITIONS_PUBLIC=false); then as private as the
# email, on every path.
POSITIONS = Visibility("positions", Permission.USER_READ_PRIVATE, configurable=True)


def may_read_private(actor: Actor | None, user_id: UUID) -> bool:
    """A user's email, balance and account state: the user themself and ``user:read:private``."""
    return PRIVATE_FIELDS.allows(actor, user_id)
