"""Permission classes: declarative guards on fields and mutations."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from graph.context import Context
from graph.errors import ErrorCode


class IsAuthenticated(BasePermission):
    """Passes for a signed-in user whose account and token still stand."""

    message = "Sign in to do this."
    error_extensions = {"code": ErrorCode.UNAUTHENTICATED.value}

    async def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        return await info.context.actor() is not None
