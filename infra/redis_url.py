"""Redis URLs: what the request path's connection (``infra.redis_wire``) accepts.

Read at start by ``infra.settings`` too, so that a URL the connection could not use
stops the server with one line, not the first request.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where and how to connect: the parts of a Redis URL the request path's connection
    supports (``infra.redis_wire``)."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """Parse ``redis://``, ``rediss://`` (TLS) and ``unix://`` URLs as redis-py does.

        Supported: user name and password (``AUTH``), host, port, the database as
        the path (``/2``) or as ``?db=2`` (``SELECT``), and for ``unix://`` the
        socket's path. Anything else (other query parameters, a path that is not
        a database number, a user name without a password) raises ``ValueError``,
        so the caller can fall back to redis-py rather than connect differently.
        """
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"unsupported scheme {parsed.scheme!r}: a Redis URL starts with redis://,"
                " rediss:// or unix://"
            )
        query = parse_qs(parsed.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"db"})
        if unknown:
            raise ValueError(f"unsupported Redis URL parameters: {', '.join(unknown)}")
        db_text = query["db"][-1] if "db" in query else None
        username = unquote(parsed.username) if parsed.username else None
        password = unquote(parsed.password) if parsed.password else None
        if username is not None and password is None:
            raise ValueError("a Redis URL with a user name needs a password too")
        if parsed.scheme == "unix":
            path = unquote(parsed.path)
            if not path:
                raise ValueError("a unix:// Redis URL needs the socket's path")
            return cls(path=path, db=_db(db_text), username=username, password=password, tls=False)
        if db_text is None and parsed.path not in ("", "/"):
            db_text = unquote(parsed.path).removeprefix("/")
        try:
            port = parsed.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("the port is not a number between 1 and 65535")
        return cls(
            host=unquote(parsed.hostname) if parsed.hostname else "localhost",
            port=port if port is not None else 6379,
            db=_db(db_text),
            username=username,
            password=password,
            tls=parsed.scheme == "rediss",
        )

    def describe(self) -> str:
        """Where, for error messages (never the password)."""
        if self.path is not None:
            return f"unix:{self.path} db {self.db}"
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port} db {self.db}"


def _db(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit():
        raise ValueError(f"database {text!r} is not a number: it must be a number")
    return int(text)
