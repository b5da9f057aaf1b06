"""Who is asking: the user behind an access token, and whether its session still stands."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import User
from domain.ports import Clock, Identity
from infra.db.models import sessions, users
from infra.db.rows import USER_COLUMNS


class IdentityReader:
    """One statement per authenticated request: the user row and its session's state.

    A session stands until it is revoked or its absolute ``session_lifetime``
    from sign-in has passed, so an access token dies with its session even
    when the token itself would last a few minutes longer.
    """

    def __init__(self, engine: AsyncEngine, session_lifetime: timedelta, clock: Clock) -> None:
        self._engine = engine
        self._lifetime = session_lifetime
        self._clock = clock

    async def identity(self, user_id: UUID, session_id: UUID) -> Identity | None:
        session_active = (
            sa.select(sa.literal(True))
            .where(
                sessions.c.id == session_id,
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.created_at > self._clock() - self._lifetime,
            )
            .exists()
        )
        stmt = sa.select(*USER_COLUMNS, session_active.label("session_active")).where(
            users.c.id == user_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        user = User(**{column.name: row._mapping[column.name] for column in USER_COLUMNS})
        return Identity(user=user, session_active=bool(row._mapping["session_active"]))
