"""Permission classes: declarative guards on fields and mutations.

They ask the domain policy about the actor as the database has them on this
request. No actor gives UNAUTHENTICATED; an actor without the right gives
FORBIDDEN. Ownership rules need the object, so the services check those.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from domain.policy import Permission, has_permission
from graph.context import Context
from graph.errors import ErrorCode, unauthenticated


class IsAuthenticated(BasePermission):
    """Passes for a signed-in user whose account, session and token still stand."""

    message = "Sign in to do this."
    error_extensions = {"code": ErrorCode.UNAUTHENTICATED.value}

    async def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        return await info.context.actor() is not None


class HasPermission(BasePermission):
    """Passes when the actor's role grants ``permission``."""

    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        self.message = f"This needs the '{permission.value}' permission."

    async def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        actor = await info.context.actor()
        if actor is None:
            raise unauthenticated()
        return has_permission(actor, self.permission)


def requires(*permissions: Permission) -> list[FieldExtension]:
    """Field extensions that guard a field with one or more permissions."""
    return [PermissionExtension([HasPermission(p) for p in permissions], use_directives=False)]


def signed_in() -> list[FieldExtension]:
    return [PermissionExtension([IsAuthenticated()], use_directives=False)]
