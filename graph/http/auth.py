"""Who is asking: the bearer token of a request, checked before anything executes."""

from __future__ import annotations

from collections.abc import Callable

from domain.ports import AccessClaims, InvalidToken
from graph.context import Context
from graph.errors import ApiError, ErrorCode
from graph.http.messages import HttpRequest
from graph.http.protocol import RequestFailed

_CHALLENGE = 'Bearer realm="marketgraph"'
_INVALID = 'Bearer realm="marketgraph", error="invalid_token"'


def claims(request: HttpRequest, decode: Callable[[str], AccessClaims]) -> AccessClaims | None:
    """The claims of the request's bearer token, None without one; 401 for a bad one."""
    header = request.header(b"authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RequestFailed(
            401,
            ErrorCode.UNAUTHENTICATED,
            "Send the access token as 'Authorization: Bearer <token>'.",
            {"WWW-Authenticate": _CHALLENGE},
        )
    try:
        return decode(token.strip())
    except InvalidToken:
        raise RequestFailed(
            401,
            ErrorCode.UNAUTHENTICATED,
            "The access token is invalid or expired.",
            {"WWW-Authenticate": _INVALID},
        ) from None


async def authenticate(context: Context) -> None:
    """A well-signed token must also still stand: user enabled, session open, version current.

    Checked before execution (one statement), so revoked credentials get the
    same 401 as forged ones instead of partial data.
    """
    if context.claims is None:
        return
    try:
        await context.actor()
    except ApiError as error:
        raise RequestFailed(
            401, ErrorCode.UNAUTHENTICATED, error.message, {"WWW-Authenticate": _INVALID}
        ) from None
