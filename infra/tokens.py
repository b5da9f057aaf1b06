"""Access tokens: JWTs signed with HS256 under a key id, decoded strictly (RFC 8725)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

from domain.entities import User
from domain.ports import AccessClaims, AccessToken, Clock, InvalidToken

ALGORITHM = "HS256"
ACCESS = "access"
LEEWAY_SECONDS = 10
_REQUIRED = ["exp", "iat", "nbf", "sub", "iss", "aud", "jti", "typ", "sid", "ver"]


class JwtTokens:
    """Signs with the current key; verifies with any key of the fixed key map.

    The algorithm is pinned (never read from the token), every registered
    claim is required, and the key comes only from our own map by ``kid``.
    """

    def __init__(
        self,
        keys: Mapping[str, str],
        current_kid: str,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        clock: Clock,
    ) -> None:
        if current_kid not in keys:
            raise ValueError("the current key id must be in the key map")
        self._keys = dict(keys)
        self._kid = current_kid
        self._issuer = issuer
        self._audience = audience
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    def issue_access(self, user: User, session_id: UUID) -> AccessToken:
        now = self._clock()
        expires = int((now + self._ttl).timestamp())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user.id),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": expires,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS,
            "sid": str(session_id),
            "ver": user.token_version,
        }
        token = jwt.encode(
            claims, self._keys[self._kid], algorithm=ALGORITHM, headers={"kid": self._kid}
        )
        return AccessToken(token=token, expires_at=datetime.fromtimestamp(expires, UTC))

    def decode_access(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None or header.get("alg") != ALGORITHM:
                raise InvalidToken("unknown key or algorithm")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": _REQUIRED},
            )
            if claims.get("typ") != ACCESS:
                raise InvalidToken("not an access token")
            return AccessClaims(
                user_id=UUID(str(claims["sub"])),
                session_id=UUID(str(claims["sid"])),
                token_version=int(claims["ver"]),
                jti=str(claims["jti"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(str(error)) from None


__all__ = ["AccessClaims", "InvalidToken", "JwtTokens"]
