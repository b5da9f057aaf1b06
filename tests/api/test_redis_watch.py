"""A Redis outage is logged once when it starts and once when it ends, not per request."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import orjson
import pytest
import redis

import graph.app
from infra.settings import Settings
from tests.support import LiveServer, free_port


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of this test's own on a spare port, so it can be frozen."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed for this test"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    client.close()
    try:
        yield process, port
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait(timeout=10)


def redis_events(caplog: pytest.LogCaptureFixture) -> list[str]:
    events = []
    for record in caplog.records:
        if record.name == "marketgraph.app":
            event = orjson.loads(record.getMessage())["event"]
            if event.startswith("redis."):
                events.append(event)
    return events


def wait_for(caplog: pytest.LogCaptureFixture, event: str) -> None:
    deadline = time.monotonic() + 30  # a guard against a hang, not a measure of speed
    while event not in redis_events(caplog):
        assert time.monotonic() < deadline, f"no {event} line"
        time.sleep(0.05)


def test_outage_and_recovery_are_logged_once_each(
    settings: Settings,
    own_redis: tuple[subprocess.Popen[bytes], int],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(graph.app, "REDIS_CHECK_SECONDS", 0.05)
    caplog.set_level(logging.INFO, logger="marketgraph.app")
    process, port = own_redis
    server = LiveServer(
        dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{port}/0", db_pool_size=2)
    )
    server.start()
    try:
        os.kill(process.pid, signal.SIGSTOP)
        wait_for(caplog, "redis.unreachable")
        time.sleep(1)  # many more checks, all failing
        os.kill(process.pid, signal.SIGCONT)
        wait_for(caplog, "redis.reachable")
        time.sleep(0.5)  # more checks, all passing
    finally:
        server.stop()
    assert redis_events(caplog) == ["redis.unreachable", "redis.reachable"]
