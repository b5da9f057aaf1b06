"""Which Redis URLs RedisWire takes (read as redis-py reads them) and which it refuses."""

from __future__ import annotations

import ssl

import pytest
from redis.asyncio.connection import parse_url

from infra.redis_url import RedisAddress
from infra.redis_wire import RedisWire, Script

SUPPORTED = {
    "redis://127.0.0.1:6380/2": RedisAddress(host="127.0.0.1", port=6380, db=2),
    "redis://cache.internal": RedisAddress(host="cache.internal"),
    "redis://cache.internal/": RedisAddress(host="cache.internal"),
    "redis://": RedisAddress(),
    "redis://cache.internal?db=4": RedisAddress(host="cache.internal", db=4),
    # As in redis-py, ?db= wins over the path.
    "redis://cache.internal/1?db=4": RedisAddress(host="cache.internal", db=4),
    "redis://:s3cret%2Fpw@cache.internal/3": RedisAddress(
        host="cache.internal", db=3, password="s3cret/pw"
    ),
    "rediss://app:p%40ss@cache.internal:6390/0": RedisAddress(
        host="cache.internal", port=6390, username="app", password="p@ss", tls=True
    ),
    "redis://[::1]:7000/5": RedisAddress(host="::1", port=7000, db=5),
    "unix:///run/redis/redis.sock": RedisAddress(path="/run/redis/redis.sock"),
    "unix://:pw@/run/redis/redis.sock?db=2": RedisAddress(
        path="/run/redis/redis.sock", db=2, password="pw"
    ),
}


@pytest.mark.parametrize(("url", "expected"), SUPPORTED.items())
def test_supported_urls_are_read_as_redis_py_reads_them(url: str, expected: RedisAddress) -> None:
    address = RedisAddress.from_url(url)
    assert address == expected
    # Every part redis-py finds in the URL, it finds with the same value.
    theirs = parse_url(url)
    ours = {
        "host": address.host,
        "port": address.port,
        "db": address.db,
        "username": address.username,
        "password": address.password,
        "path": address.path,
    }
    found = {key: value for key, value in theirs.items() if key in ours}
    assert found == {key: ours[key] for key in found}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://cache.internal", "scheme"),
        ("redis+sentinel://cache.internal", "scheme"),
        ("redis://cache.internal?socket_timeout=1", "socket_timeout"),
        ("redis://cache.internal?protocol=3", "protocol"),
        ("rediss://cache.internal?ssl_cert_reqs=none", "ssl_cert_reqs"),
        ("redis://cache.internal/zero", "must be a number"),
        ("redis://cache.internal/-1", "must be a number"),
        ("redis://cache.internal?db=x", "must be a number"),
        ("redis://app@cache.internal/0", "needs a password"),
        ("redis://cache.internal:99999/0", "port"),
        ("unix://", "socket's path"),
    ],
)
def test_unsupported_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        RedisWire(url)


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="rediss://"):
        RedisWire("redis://cache.internal", ssl_context=ssl.create_default_context())
    with pytest.raises(ValueError, match="max_pending"):
        RedisWire("redis://cache.internal", max_pending=0)
    with pytest.raises(ValueError, match="positive"):
        RedisWire("redis://cache.internal", timeout=0)


def test_a_description_never_shows_the_password() -> None:
    described = RedisAddress.from_url("rediss://app:hunter2@cache.internal:6390/1").describe()
    assert described == "rediss://cache.internal:6390 db 1"
    assert "hunter2" not in described


def test_a_script_knows_its_sha1() -> None:
    # SHA-1 of "return 1", as Redis's SCRIPT LOAD answers it.
    assert Script("return 1").sha == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
    assert Script(b"return 1").source == b"return 1"
