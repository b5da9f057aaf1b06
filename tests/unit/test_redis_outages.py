"""Which Redis failures open the breaker: a server that cannot serve now, never a bug."""

from __future__ import annotations

import pytest
from redis._parsers.base import BaseParser

from infra.redis import RedisBusy, is_outage


def reply_error(message: str) -> BaseException:
    """What redis-py (and the wire, through the same parser) raises for an error reply."""
    error: BaseException = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]
    return error


@pytest.mark.parametrize(
    "reply",
    [
        "OOM command not allowed when used memory > 'maxmemory'.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "LOADING Redis is loading the dataset in memory",
        "READONLY You can't write against a read only replica.",
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
    ],
)
def test_a_server_that_cannot_serve_now_is_an_outage(reply: str) -> None:
    assert is_outage(reply_error(reply)), type(reply_error(reply)).__name__


@pytest.mark.parametrize(
    "reply",
    [
        "ERR Error running script (call to f_1234): user_script:3: bad argument",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "NOSCRIPT No matching script. Please use EVAL.",
    ],
)
def test_a_bug_is_not_an_outage(reply: str) -> None:
    assert not is_outage(reply_error(reply))


def test_overload_is_not_an_outage() -> None:
    assert not is_outage(RedisBusy("1024 Redis commands are already waiting"))
