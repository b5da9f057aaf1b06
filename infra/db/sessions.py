"""The session repository: refresh-token families."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.changes import Changes, Kind
from domain.ports import RefreshRecord
from infra.db.models import refresh_tokens, sessions


class SqlSessionRepository:
    """Sessions show nothing themselves; ending all of a user's counts as a change to the
    user (what their old tokens could read is no longer theirs to read)."""

    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    async def start(self, session_id: UUID, user_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            sa.insert(sessions).values(id=session_id, user_id=user_id, created_at=now)
        )

    async def add_token(
        self,
        token_id: UUID,
        session_id: UUID,
        token_hash: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await self._conn.execute(
            sa.insert(refresh_tokens).values(
                id=token_id,
                session_id=session_id,
                token_hash=token_hash,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def token_for_update(self, token_hash: str) -> RefreshRecord | None:
        """Lock the token row, so two refreshes with one token are serialized."""
        stmt = (
            sa.select(
                refresh_tokens.c.id,
                refresh_tokens.c.session_id,
                sessions.c.user_id,
                refresh_tokens.c.expires_at,
                refresh_tokens.c.used_at,
                sessions.c.revoked_at.is_not(None),
                sessions.c.created_at,
            )
            .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.token_hash == token_hash)
            .with_for_update(of=refresh_tokens)
        )
        row = (await self._conn.execute(stmt)).one_or_none()
        return None if row is None else RefreshRecord(*row)

    async def mark_used(self, token_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            sa.update(refresh_tokens).where(refresh_tokens.c.id == token_id).values(used_at=now)
        )

    async def revoke(self, session_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            sa.update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_all(self, user_id: UUID, now: datetime, keep: UUID | None = None) -> None:
        self._changes.entity(Kind.USER, user_id)
        conditions = [sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)]
        if keep is not None:
            conditions.append(sessions.c.id != keep)
        await self._conn.execute(sa.update(sessions).where(*conditions).values(revoked_at=now))
