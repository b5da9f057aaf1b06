"""The registry of trusted documents, in the database every API process shares."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import Conflict
from domain.ports import TrustedDocument
from infra.db.models import trusted_documents

_COLUMNS = (
    trusted_documents.c.id,
    trusted_documents.c.body,
    trusted_documents.c.sha256,
    trusted_documents.c.name,
    trusted_documents.c.created_at,
)


class SqlTrustedDocuments:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def all(self) -> list[TrustedDocument]:
        return await self._select(sa.true())

    async def since(self, registered_after: datetime) -> list[TrustedDocument]:
        return await self._select(trusted_documents.c.created_at >= registered_after)

    async def _select(self, where: sa.ColumnElement[bool]) -> list[TrustedDocument]:
        stmt = sa.select(*_COLUMNS).where(where).order_by(trusted_documents.c.created_at)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [TrustedDocument(*row) for row in rows]

    async def register(self, documents: Sequence[TrustedDocument], now: datetime) -> int:
        """Add the documents in one transaction: all of them, or (a conflict) none."""
        if not documents:
            return 0
        ids = [document.id for document in documents]
        async with self._engine.begin() as conn:
            known = {
                row.id: row.body
                for row in (
                    await conn.execute(
                        sa.select(trusted_documents.c.id, trusted_documents.c.body).where(
                            trusted_documents.c.id.in_(ids)
                        )
                    )
                ).all()
            }
            new = []
            for document in documents:
                body = known.get(document.id)
                if body is None:
                    new.append(document)
                elif body != document.body:
                    raise Conflict(
                        "id",
                        f"The id '{document.id}' is registered already, for another document.",
                    )
            if new:
                await conn.execute(
                    sa.insert(trusted_documents),
                    [
                        {
                            "id": document.id,
                            "sha256": document.sha256,
                            "name": document.name,
                            "body": document.body,
                            "created_at": now,
                        }
                        for document in new
                    ],
                )
        return len(new)
