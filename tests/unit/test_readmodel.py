"""The read model: its declaration matches the tables, and its one visibility rule.

``list_scope`` and ``row_visible`` decide, for the resolver path, who sees which
positions, trades and ledger entries; the compiled path renders the same
``Visibility`` rules as SQL (checked against the resolvers by the differential
tests). Expected answers here come from the issue's rules, not from the code.
"""

from __future__ import annotations

import uuid

import pytest

from domain.entities import Role
from domain.policy import POSITIONS, Actor
from domain.readmodel import (
    LEDGER_ENTRY,
    MARKET,
    POSITION,
    TRADE,
    TYPES,
    USER,
    Children,
    Column,
    Complement,
    GlobalId,
    ListScope,
    Private,
    Reference,
    RolePermissions,
    list_scope,
    relation,
    row_visible,
)
from infra.db.rows import ENTITY_ROWS

PUBLIC = frozenset({POSITIONS.name})
PRIVATE: frozenset[str] = frozenset()


def someone(role: Role = Role.USER) -> Actor:
    return Actor(user_id=uuid.uuid4(), role=role)


def _columns(field: object) -> list[str]:
    if isinstance(field, Private):
        return [*_columns(field.value), field.owner]
    if isinstance(field, Column | GlobalId | Complement | RolePermissions):
        return [field.column]
    if isinstance(field, Reference):
        return [field.key]
    return []


@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_type_is_read_from_its_declared_table_and_columns(name: str) -> None:
    kind = TYPES[name]
    table = ENTITY_ROWS[name].columns[0].table
    assert table.name == kind.table
    for field in kind.fields.values():
        for column in _columns(field):
            assert column in table.c, f"{name}: no column {column}"
        if isinstance(field, Children):
            target = ENTITY_ROWS[field.target].columns[0].table
            assert field.parent_key in target.c
            assert field.sort.column in target.c
            assert field.owner is None or field.owner in target.c
    if kind.owner is not None:
        assert kind.owner in table.c


def test_a_market_s_positions_public_or_kept_to_their_holders() -> None:
    positions = relation(MARKET, "positions")
    market = uuid.uuid4()
    viewer = someone()
    admin = someone(Role.ADMIN)
    assert list_scope(positions, None, market, PUBLIC) == ListScope()
    assert list_scope(positions, viewer, market, PUBLIC) == ListScope()
    assert list_scope(positions, None, market, PRIVATE) == ListScope(empty=True)
    assert list_scope(positions, viewer, market, PRIVATE) == ListScope(holder=viewer.user_id)
    assert list_scope(positions, someone(Role.MODERATOR), market, PRIVATE).holder is not None
    assert list_scope(positions, admin, market, PRIVATE) == ListScope()


@pytest.mark.parametrize("name", ["positions", "trades"])
def test_a_user_s_holdings_when_private_are_theirs_and_admins_only(name: str) -> None:
    holdings = relation(USER, name)
    owner = someone()
    assert list_scope(holdings, None, owner.user_id, PUBLIC) == ListScope()
    assert list_scope(holdings, owner, owner.user_id, PRIVATE) == ListScope()
    assert list_scope(holdings, someone(Role.ADMIN), owner.user_id, PRIVATE) == ListScope()
    assert list_scope(holdings, someone(), owner.user_id, PRIVATE) == ListScope(hidden=True)
    assert list_scope(holdings, None, owner.user_id, PRIVATE) == ListScope(hidden=True)


def test_a_ledger_is_as_private_as_the_balance_whatever_the_deployment() -> None:
    ledger = relation(USER, "ledger")
    owner = someone()
    for public in (PUBLIC, PRIVATE):
        assert list_scope(ledger, owner, owner.user_id, public) == ListScope()
        assert list_scope(ledger, someone(Role.ADMIN), owner.user_id, public) == ListScope()
        assert list_scope(ledger, someone(Role.MODERATOR), owner.user_id, public).hidden
        assert list_scope(ledger, None, owner.user_id, public).hidden


def test_a_user_s_markets_are_public() -> None:
    assert list_scope(relation(USER, "markets"), None, uuid.uuid4(), PRIVATE) == ListScope()


def test_rows_through_node_follow_the_same_rules() -> None:
    owner = someone()
    stranger = someone()
    for kind in (POSITION, TRADE):
        assert row_visible(kind, None, owner.user_id, PUBLIC)
        assert row_visible(kind, owner, owner.user_id, PRIVATE)
        assert not row_visible(kind, stranger, owner.user_id, PRIVATE)
        assert not row_visible(kind, None, owner.user_id, PRIVATE)
        assert row_visible(kind, someone(Role.ADMIN), owner.user_id, PRIVATE)
    assert not row_visible(LEDGER_ENTRY, stranger, owner.user_id, PUBLIC)
    assert row_visible(LEDGER_ENTRY, owner, owner.user_id, PUBLIC)
    assert row_visible(MARKET, None, None, PRIVATE)
