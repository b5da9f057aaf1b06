"""The role-permission matrix and the ownership and visibility rules of ``domain.policy``.

The expected matrix is written out here from the issue, not read back from the
module: the API tests derive their per-role expectations from
``ROLE_PERMISSIONS``, so this is what pins that table to the specification.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.entities import Market, MarketStatus, Role
from domain.policy import (
    POSITIONS,
    ROLE_PERMISSIONS,
    Actor,
    Permission,
    has_permission,
    may_delete_market,
    may_read_private,
    may_update_market,
)

USER = {"market:create", "market:update:own", "market:delete:own"}
MODERATOR = USER | {"market:close", "market:cancel", "market:resolve", "job:read"}
ADMIN = MODERATOR | {
    "market:update:any",
    "market:delete:any",
    "user:read:private",
    "user:manage",
}
EXPECTED = {Role.USER: USER, Role.MODERATOR: MODERATOR, Role.ADMIN: ADMIN}


def actor(role: Role) -> Actor:
    return Actor(user_id=uuid.uuid4(), role=role)


def market_of(creator: uuid.UUID) -> Market:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    return Market(
        id=uuid.uuid4(),
        name="Will it rain?",
        description=None,
        status=MarketStatus.ACTIVE,
        outcome=None,
        creator_id=creator,
        end_date=at + timedelta(days=1),
        liquidity=Decimal(100),
        q_yes=Decimal(0),
        q_no=Decimal(0),
        volume=Decimal(0),
        created_at=at,
        updated_at=at,
        yes_price=Decimal("0.5"),
    )


def test_every_role_has_a_permission_set() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)


@pytest.mark.parametrize("role", list(Role))
def test_role_has_exactly_the_permissions_of_the_issue(role: Role) -> None:
    assert {p.value for p in ROLE_PERMISSIONS[role]} == EXPECTED[role]


def test_the_permission_names_are_those_of_the_issue() -> None:
    assert {p.value for p in Permission} == ADMIN


def test_roles_are_nested() -> None:
    assert ROLE_PERMISSIONS[Role.USER] < ROLE_PERMISSIONS[Role.MODERATOR]
    assert ROLE_PERMISSIONS[Role.MODERATOR] < ROLE_PERMISSIONS[Role.ADMIN]


@pytest.mark.parametrize("permission", list(Permission))
def test_has_permission_follows_the_matrix(permission: Permission) -> None:
    assert not has_permission(None, permission)
    for role in Role:
        assert has_permission(actor(role), permission) is (permission.value in EXPECTED[role])


# (role, is the creator) -> may update / may delete
OWNERSHIP = [
    (Role.USER, True, True),
    (Role.USER, False, False),
    (Role.MODERATOR, True, True),
    (Role.MODERATOR, False, False),
    (Role.ADMIN, True, True),
    (Role.ADMIN, False, True),
]


@pytest.mark.parametrize(("role", "creator", "allowed"), OWNERSHIP)
def test_may_update_market(role: Role, creator: bool, allowed: bool) -> None:
    who = actor(role)
    market = market_of(who.user_id if creator else uuid.uuid4())
    assert may_update_market(who, market) is allowed


@pytest.mark.parametrize(("role", "creator", "allowed"), OWNERSHIP)
def test_may_delete_market(role: Role, creator: bool, allowed: bool) -> None:
    who = actor(role)
    market = market_of(who.user_id if creator else uuid.uuid4())
    assert may_delete_market(who, market) is allowed


# (role or None for anonymous, reads own data) -> may read private fields
PRIVATE = [
    (None, False, False),
    (Role.USER, True, True),
    (Role.USER, False, False),
    (Role.MODERATOR, True, True),
    (Role.MODERATOR, False, False),
    (Role.ADMIN, True, True),
    (Role.ADMIN, False, True),
]


@pytest.mark.parametrize(("role", "own", "allowed"), PRIVATE)
def test_may_read_private(role: Role | None, own: bool, allowed: bool) -> None:
    who = None if role is None else actor(role)
    subject = who.user_id if (who is not None and own) else uuid.uuid4()
    assert may_read_private(who, subject) is allowed


@pytest.mark.parametrize(("role", "own", "private_allowed"), PRIVATE)
@pytest.mark.parametrize("public", [True, False])
def test_positions_are_public_unless_configured_private(
    role: Role | None, own: bool, private_allowed: bool, public: bool
) -> None:
    who = None if role is None else actor(role)
    holder = who.user_id if (who is not None and own) else uuid.uuid4()
    expected = True if public else private_allowed
    assert POSITIONS.allows(who, holder, public) is expected
